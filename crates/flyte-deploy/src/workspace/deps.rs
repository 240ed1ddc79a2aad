//! Dependency files: what of their content matters. A requirements file's comments, blank
//! lines and whitespace do not reach the image, so they are normalised away before
//! comparing or hashing. Pure functions over bytes.

/// True for pip requirement files: `requirements*.txt` and `requirements*.in`.
pub(crate) fn is_requirements(path: &[u8]) -> bool {
    let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
    name.starts_with(b"requirements") && (name.ends_with(b".txt") || name.ends_with(b".in"))
}

/// The content of a dependency file as far as the image is concerned. Requirement files:
/// continuation lines joined, comments (`#` at the start or after whitespace) removed,
/// runs of whitespace folded, blank lines dropped, order kept. Other files: unchanged.
pub(crate) fn normalised(path: &[u8], bytes: &[u8]) -> Vec<u8> {
    if !is_requirements(path) {
        return bytes.to_vec();
    }
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n").replace("\\\n", " ");
    let mut out = String::new();
    for line in text.lines() {
        let line = strip_comment(line);
        let folded = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !folded.is_empty() {
            out.push_str(&folded);
            out.push('\n');
        }
    }
    out.into_bytes()
}

fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_spacing_do_not_matter() {
        let a = normalised(b"requirements.txt", b"# image deps\nflytekit==1.16.31\n\npandas>=2  # data\n");
        let b = normalised(b"x/requirements.txt", b"flytekit==1.16.31   \n   pandas>=2\n\n# end\n");
        assert_eq!(a, b);
        assert_eq!(a, b"flytekit==1.16.31\npandas>=2\n");
    }

    #[test]
    fn a_real_change_is_kept() {
        let a = normalised(b"requirements-dev.in", b"flytekit==1.16.31\n");
        let b = normalised(b"requirements-dev.in", b"flytekit==1.16.30\n");
        assert_ne!(a, b);
    }

    #[test]
    fn url_fragments_are_not_comments() {
        let n = normalised(b"requirements.txt", b"pkg @ https://x/p.zip#sha256=ab\n");
        assert_eq!(n, b"pkg @ https://x/p.zip#sha256=ab\n");
    }

    #[test]
    fn other_files_are_taken_whole() {
        assert_eq!(normalised(b"Dockerfile", b"# x\nFROM a\n"), b"# x\nFROM a\n");
        assert!(!is_requirements(b"pyproject.toml"));
        assert!(is_requirements(b"workflows/a/requirements-gpu.txt"));
    }
}
