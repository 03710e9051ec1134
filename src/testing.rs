//! What the lib tests share.

/// A lib test that cannot run here says so on the real stderr, which the test harness does not
/// capture (it captures `eprintln!`): a skip is never silent.
pub fn say_skipped(test: &str) {
    let _ = std::io::Write::write_all(
        &mut std::io::stderr().lock(),
        format!("SKIPPED (needs root): {test}\n").as_bytes(),
    );
}
