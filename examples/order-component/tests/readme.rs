//! The repository's README shows this component whole: its blocks are
//! the files, as they are.

/// The code block after `marker` in the README.
fn block_after(readme: &str, marker: &str) -> String {
    let after = readme
        .split_once(marker)
        .unwrap_or_else(|| panic!("README has no {marker}"))
        .1;
    let code = after.split_once("```").expect("a code block").1;
    let code = code.split_once('\n').expect("the fence's line").1;
    code.split_once("```")
        .expect("the block's end")
        .0
        .to_owned()
}

#[test]
fn the_readme_shows_the_component_and_its_tests_as_they_are() {
    let readme = include_str!("../../../README.md");
    assert_eq!(
        block_after(readme, "<!-- examples/order-component/src/main.rs -->"),
        include_str!("../src/main.rs")
    );
    assert_eq!(
        block_after(readme, "<!-- examples/order-component/src/tests.rs -->"),
        include_str!("../src/tests.rs")
    );
}
