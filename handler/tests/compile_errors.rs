//! What the compiler says about the handler API's common mistakes, and
//! that the ways out of them compile.

#[test]
fn mistakes_point_at_the_fix() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
