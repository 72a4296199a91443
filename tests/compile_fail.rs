//! Malformed macro calls do not compile, and the compiler says why: each
//! case in `tests/ui/` has its message pinned in the `.stderr` beside it
//! (regenerate with `TRYBUILD=overwrite cargo test --test compile_fail`
//! after a deliberate change, and review the diff).

#[test]
fn malformed_macro_calls_fail_with_these_messages() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
