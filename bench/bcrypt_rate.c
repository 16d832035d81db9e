/* Raw bcrypt rate of this machine: THREADS threads (default: online cores) each verify a
 * fixed `$2b$` hash with libxcrypt's crypt_rn in a loop for SECONDS; prints hashes/s.
 * The ceiling for POST /auth/login (one bcrypt per login).
 *
 *   cc -O2 bench/bcrypt_rate.c -lcrypt -lpthread -o bench/out/bcrypt_rate
 *   bench/out/bcrypt_rate COST SECONDS [THREADS]
 */
#include <crypt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char setting[CRYPT_GENSALT_OUTPUT_SIZE];
static atomic_int stop;
static atomic_long done;

static void *spin(void *arg) {
    (void)arg;
    struct crypt_data *data = calloc(1, sizeof *data);
    if (data == NULL) return NULL;
    while (!atomic_load(&stop)) {
        if (crypt_rn("correct horse battery", setting, data, sizeof *data) == NULL) {
            fprintf(stderr, "bcrypt_rate: crypt_rn failed\n");
            exit(1);
        }
        atomic_fetch_add(&done, 1);
    }
    free(data);
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int cost = argc > 1 ? atoi(argv[1]) : 10;
    double seconds = argc > 2 ? atof(argv[2]) : 3;
    int threads = argc > 3 ? atoi(argv[3]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1 || threads > 1024 || seconds <= 0) return 2;
    /* A fixed salt: the rate does not depend on it. */
    if (crypt_gensalt_rn("$2b$", (unsigned long)cost, "0123456789abcdef", 16, setting, sizeof setting) == NULL) {
        fprintf(stderr, "bcrypt_rate: crypt_gensalt_rn failed\n");
        return 1;
    }
    pthread_t t[1024];
    double start = now();
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, spin, NULL);
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&stop, 1);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    double elapsed = now() - start;
    long n = atomic_load(&done);
    printf("%.2f %ld %.3f %d\n", n / elapsed, n, elapsed, threads); /* hashes/s count seconds threads */
    return 0;
}
