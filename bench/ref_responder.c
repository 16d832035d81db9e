/* The benchmark's yardstick, not part of the product: a minimal libfcgi responder that
 * checks an HS256 bearer token the way authd's GET / must, and nothing more (no kid,
 * alg, typ or claims checks). N threads, each with its own FCGX_Request and its own
 * HMAC context keyed once.
 *
 * Verify mode, for requests whose DOCUMENT_URI is /auth/verify (nginx's auth_request
 * subrequest, through deploy/nginx.conf's /_authd/verify): answered as authd's verify
 * answers a token that passes, 204 with X-Auth-User, -Session, -Username, -Roles (empty:
 * tokens carry none) and -Expires from the claims sub, sid, preferred_username and exp,
 * and Cache-Control: no-store; otherwise 401 with the error object in X-Auth-Error too.
 * Beyond the signature it checks only that exp is in the future and that sub and sid
 * are there; the claim values are copied as they are (authd's are ids and names without
 * escapes).
 *
 *   cc -O2 bench/ref_responder.c -lfcgi -lcrypto -lpthread -o bench/out/ref_responder
 *   ACCESS_TOKEN_SECRET=... bench/out/ref_responder SOCKET_PATH [THREADS=128]
 */
#include <fcgiapp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static int listen_fd;
static const char *secret;

/* base64url without padding; returns the decoded length or -1. */
static int b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap) {
    unsigned acc = 0, bits = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i], v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '-') v = 62;
        else if (c == '_') v = 63;
        else return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (len == cap) return -1;
            out[len++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)len;
}

/* The signature of "Bearer <token>"; on success *payload and *payload_len are the
 * token's (base64url) payload. */
static int token_ok(EVP_MAC_CTX *ctx, const char *auth, const char **payload, size_t *payload_len) {
    if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0) return 0;
    const char *tok = auth + 7;
    const char *dot1 = strchr(tok, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (dot2 == NULL) return 0;
    *payload = dot1 + 1;
    *payload_len = (size_t)(dot2 - dot1 - 1);
    unsigned char given[64], mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    int n = b64url_decode(dot2 + 1, strlen(dot2 + 1), given, sizeof given);
    if (n != 32) return 0;
    /* NULL key: re-initialise with the key set once per thread. */
    if (!EVP_MAC_init(ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(ctx, (const unsigned char *)tok, (size_t)(dot2 - tok)) ||
        !EVP_MAC_final(ctx, mac, &maclen, sizeof mac) || maclen != 32) return 0;
    return CRYPTO_memcmp(mac, given, 32) == 0;
}

static const char ok_resp[] = "Status: 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: 16\r\n\r\n{\"message\":\"ok\"}";
static const char no_resp[] = "Status: 401 Unauthorized\r\nContent-Type: application/json\r\n"
                              "Content-Length: 49\r\n\r\n{\"error\":{\"status\":401,\"message\":\"Unauthorized\"}}";
#define VERIFY_ERROR "{\"error\":{\"status\":401,\"code\":\"token_invalid\",\"message\":\"Unauthorized\"}}"
static const char verify_no_resp[] = "Status: 401 Unauthorized\r\nContent-Type: application/json\r\n"
                                     "Content-Length: 72\r\nWWW-Authenticate: Bearer error=\"invalid_token\"\r\n"
                                     "X-Auth-Error: " VERIFY_ERROR "\r\n\r\n" VERIFY_ERROR;

/* The value of the claim NAME in the decoded JSON payload: a string (without escapes)
 * or, with number set, digits. Returns its length, or -1 when it is not there. */
static int claim(const char *json, size_t n, const char *name, int number, const char **value) {
    char key[32];
    int kl = snprintf(key, sizeof key, "\"%s\":", name);
    const char *end = json + n;
    for (const char *p = json; p + kl <= end; p++) {
        if (memcmp(p, key, (size_t)kl) != 0) continue;
        p += kl;
        if (!number) {
            if (p == end || *p != '"') return -1;
            const char *q = ++p;
            while (q < end && *q != '"' && *q != '\\') q++;
            if (q == end || *q != '"') return -1;
            *value = p;
            return (int)(q - p);
        }
        const char *q = p;
        while (q < end && *q >= '0' && *q <= '9') q++;
        if (q == p) return -1;
        *value = p;
        return (int)(q - p);
    }
    return -1;
}

/* authd's verify answer for a token whose signature passed; 0 when its claims do not. */
static int verify_answer(const char *payload, size_t payload_len, char *out, size_t cap) {
    char json[1024];
    int n = b64url_decode(payload, payload_len, (unsigned char *)json, sizeof json);
    if (n <= 0) return 0;
    const char *sub, *sid, *name = "", *exp;
    int lsub = claim(json, (size_t)n, "sub", 0, &sub);
    int lsid = claim(json, (size_t)n, "sid", 0, &sid);
    int lexp = claim(json, (size_t)n, "exp", 1, &exp);
    int lname = claim(json, (size_t)n, "preferred_username", 0, &name);
    if (lsub <= 0 || lsid <= 0 || lexp <= 0 || lexp > 18) return 0;
    if (lname < 0) lname = 0;
    if (strtoll(exp, NULL, 10) <= (long long)time(NULL)) return 0;
    int len = snprintf(out, cap,
                       "Status: 204 No Content\r\nX-Auth-User: %.*s\r\nX-Auth-Session: %.*s\r\n"
                       "X-Auth-Username: %.*s\r\nX-Auth-Roles: \r\nX-Auth-Expires: %.*s\r\n"
                       "Cache-Control: no-store\r\n\r\n",
                       lsub, sub, lsid, sid, lname, name, lexp, exp);
    return len > 0 && (size_t)len < cap ? len : 0;
}

static void *serve(void *arg) {
    (void)arg;
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (ctx == NULL || !EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params)) {
        fprintf(stderr, "ref_responder: HMAC setup failed\n");
        exit(1);
    }
    FCGX_Request req;
    FCGX_InitRequest(&req, listen_fd, 0);
    char answer[1536];
    while (FCGX_Accept_r(&req) >= 0) {
        const char *auth = FCGX_GetParam("HTTP_AUTHORIZATION", req.envp);
        const char *uri = FCGX_GetParam("DOCUMENT_URI", req.envp);
        const char *payload = NULL;
        size_t payload_len = 0;
        int ok = token_ok(ctx, auth, &payload, &payload_len);
        if (uri != NULL && strcmp(uri, "/auth/verify") == 0) {
            int len = ok ? verify_answer(payload, payload_len, answer, sizeof answer) : 0;
            if (len > 0) FCGX_PutStr(answer, len, req.out);
            else FCGX_PutStr(verify_no_resp, sizeof verify_no_resp - 1, req.out);
        } else if (ok) {
            FCGX_PutStr(ok_resp, sizeof ok_resp - 1, req.out);
        } else {
            FCGX_PutStr(no_resp, sizeof no_resp - 1, req.out);
        }
        FCGX_Finish_r(&req);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || (secret = getenv("ACCESS_TOKEN_SECRET")) == NULL || !*secret) {
        fprintf(stderr, "usage: ACCESS_TOKEN_SECRET=... %s SOCKET [THREADS]\n", argv[0]);
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 128;
    if (threads < 1) threads = 1;
    signal(SIGPIPE, SIG_IGN);
    FCGX_Init();
    unlink(argv[1]);
    listen_fd = FCGX_OpenSocket(argv[1], 1024);
    if (listen_fd < 0) { perror("FCGX_OpenSocket"); return 1; }
    chmod(argv[1], 0660);
    pthread_t t;
    for (int i = 0; i < threads; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (pthread_create(&t, &attr, serve, NULL) != 0) { perror("pthread_create"); return 1; }
    }
    pause(); /* SIGTERM's default action ends the process */
    return 0;
}
