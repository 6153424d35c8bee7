/* tests of the UTF-8 validator (test_utf8.c): X(name) per test */
X(utf8_rfc3629_cases)
X(utf8_split_invariance)
X(utf8_failure_is_sticky)
X(utf8_matches_reference)
X(utf8_exhaustive_3_bytes)
