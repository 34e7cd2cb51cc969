//! Misuse of `#[switchboard::rpc]` fails to compile with a message at the
//! span of what is wrong. The expected messages are the `.stderr` files
//! beside each case in `ui/` (rewrite them with `TRYBUILD=overwrite`, then
//! read the diff).

#[test]
fn misuse_is_a_compile_error_at_its_span() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
