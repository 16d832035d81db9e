"""schemathesis hooks for `make contract` (scripts/contract.sh loads this file).

The contract counts a password in bytes (8-72 bytes of UTF-8, no NUL); JSON Schema can
only count characters, so docs/openapi.yaml says 8-72 characters and states the byte
rule in words (components.schemas.Password, `format: password`). The two agree on every
ASCII password and on every password of more than 72 characters; between them lies a
gap that no JSON Schema can draw, e.g. "ééééé" (5 characters, 10 bytes: the server takes
it, the schema's minLength does not) or 40 x "é" (40 characters, 80 bytes: the schema
takes it, the server answers 422). Here:

- valid passwords are drawn within both bounds, so positive test cases are valid for the
  server too;
- any generated case whose password lies in the gap is dropped (whatever the phase or
  mode), because schemathesis could only judge it by the character bounds.

The same holds for the new password of POST /auth/password, whose cases are also dropped
when both passwords are equal (422 "must differ", a rule JSON Schema cannot state).
Nothing else is filtered or changed.
"""

from hypothesis import strategies as st

import schemathesis

MIN, MAX = 8, 72  # characters in the schema, bytes in the contract

CREDENTIAL_ROUTES = {"/auth/register", "/auth/login"}


def _bytes_ok(text: str) -> bool:
    return MIN <= len(text.encode("utf-8", "surrogatepass")) <= MAX


def _chars_ok(text: str) -> bool:
    return MIN <= len(text) <= MAX


_ascii = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=MIN, max_size=MAX)
_any = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=MIN, max_size=MAX
).filter(_bytes_ok)

schemathesis.openapi.format("password", st.one_of(_ascii, _any))


@schemathesis.hook
def filter_case(context, case) -> bool:
    if not isinstance(case.body, dict):
        return True
    if case.operation.path == "/auth/password":
        # Equal passwords are 422 ("must differ"): a rule between two fields that JSON
        # Schema cannot state. The new password follows the register rules below.
        current, password = case.body.get("currentPassword"), case.body.get("newPassword")
        if isinstance(current, str) and current == password:
            return False
    elif case.operation.path in CREDENTIAL_ROUTES:
        password = case.body.get("password")
    else:
        return True
    if not isinstance(password, str) or "\x00" in password:
        return True
    return _bytes_ok(password) == _chars_ok(password)
