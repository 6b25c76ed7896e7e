//! The README's example of a component that serves the dashboard under a
//! path of its own is `readme/embed.rs`, compiled here against the real
//! API; the test checks the README shows it as it is.

#[path = "readme/embed.rs"]
mod embed;

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
fn the_readme_shows_the_embedding_example_as_it_compiles() {
    // Named, so that the example is compiled as used code.
    let _serve = embed::serve;
    let readme = include_str!("../../README.md");
    assert_eq!(
        block_after(readme, "<!-- dashboard/tests/readme/embed.rs -->"),
        include_str!("readme/embed.rs")
    );
}
