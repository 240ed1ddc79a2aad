//! Dockerfiles read the way builders read them (BuildKit's parser, whose rules buildah and
//! podman share): the `# escape=` parser directive, line continuations, comment and blank
//! lines inside a continued instruction, and heredoc bodies, which hold no instructions.
//! Answers which build arguments a Dockerfile declares (`ARG`). Pure: text in, answers out.

/// One instruction: its keyword upper-cased (`ARG`, `RUN`, ...) and the rest of it, with its
/// continuation lines joined as the builders join them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instruction {
    pub keyword: String,
    pub args: String,
}

/// Every instruction of a Dockerfile in order: of every stage, and those before the first
/// `FROM`. Heredoc bodies are skipped; nothing is validated. (What the tests read; the
/// tool asks only for the `ARG`s.)
#[cfg(test)]
fn instructions(text: &str) -> Vec<Instruction> {
    parse(text).1
}

/// The escape token and the instructions.
fn parse(text: &str) -> (char, Vec<Instruction>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let escape = escape_token(text);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches(['\r', '\n']));
    let mut out = Vec::new();
    while let Some(first) = lines.next() {
        let first = first.trim_start();
        if first.starts_with('#') {
            continue;
        }
        let (start, mut continues) = strip_continuation(first, escape);
        let mut line = start.to_string();
        while continues {
            let Some(next) = lines.next() else { break };
            let trimmed = next.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue; // comment and blank lines do not end a continued instruction
            }
            let (part, more) = strip_continuation(next, escape);
            line.push_str(part);
            continues = more;
        }
        let Some(instruction) = split_command(&line) else { continue };
        for (terminator, chomp) in heredocs(&instruction) {
            for body in lines.by_ref() {
                let body = if chomp { body.trim_start_matches('\t') } else { body };
                if body == terminator {
                    break;
                }
            }
        }
        out.push(instruction);
    }
    (escape, out)
}

/// The names every `ARG` declares (`ARG a b=1` declares `a` and `b`), in order, repeats kept.
pub(crate) fn declared_args(text: &str) -> Vec<String> {
    let (escape, instructions) = parse(text);
    instructions
        .into_iter()
        .filter(|i| i.keyword == "ARG")
        .flat_map(|i| words(&i.args, escape))
        .map(|word| word.split_once('=').map_or(word.as_str(), |(name, _)| name).to_string())
        .collect()
}

/// True when an `ARG` of any stage declares `name` (with or without a default). The keyword's
/// case does not matter, the name's does, as for the builders.
pub(crate) fn declares_arg(text: &str, name: &str) -> bool {
    declared_args(text).iter().any(|n| n == name)
}

/// The escape token: `` ` `` when a parser directive at the top says `# escape=``, else `\`.
fn escape_token(text: &str) -> char {
    for line in text.split('\n') {
        let Some((key, value)) = directive(line.trim_end_matches(['\r', '\n']).trim_start()) else { break };
        match key.to_ascii_lowercase().as_str() {
            "escape" => return if value == "`" { '`' } else { '\\' },
            "syntax" | "check" => continue,
            _ => break, // not a directive: a comment, after which no directive counts
        }
    }
    '\\'
}

/// `# key=value` (BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`).
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let key = &rest[..end];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[end..].trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((key, value))
}

/// The line without its continuation token, and whether the instruction goes on: the token is
/// the last character but spaces and tabs, and not itself escaped.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(before) if !before.ends_with(escape) => (before, true),
        _ => (line, false),
    }
}

/// Keyword and arguments of a joined line; `None` for a blank one.
fn split_command(line: &str) -> Option<Instruction> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let space = |c: char| matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c');
    let (keyword, args) = line.split_once(space).unwrap_or((line, ""));
    Some(Instruction { keyword: keyword.to_ascii_uppercase(), args: args.trim_start_matches(space).to_string() })
}

/// The heredocs an instruction opens (`RUN`, `COPY`, `ADD`, also under `ONBUILD`, not in JSON
/// form): each terminator, and whether leading tabs are stripped before comparing (`<<-`).
fn heredocs(instruction: &Instruction) -> Vec<(String, bool)> {
    let sub;
    let (keyword, args) = if instruction.keyword == "ONBUILD" {
        let Some(s) = split_command(&instruction.args) else { return Vec::new() };
        sub = s;
        (sub.keyword.as_str(), sub.args.as_str())
    } else {
        (instruction.keyword.as_str(), instruction.args.as_str())
    };
    if !matches!(keyword, "RUN" | "COPY" | "ADD") || is_json_array(args) {
        return Vec::new();
    }
    words(args, '\\')
        .iter()
        .filter_map(|word| {
            let rest = word.trim_start_matches(|c: char| c.is_ascii_digit()).strip_prefix("<<")?;
            let (chomp, rest) = rest.strip_prefix('-').map_or((false, rest), |r| (true, r));
            let name: String = rest.chars().filter(|c| !matches!(c, '\'' | '"')).collect();
            (!rest.contains('<') && !name.is_empty()).then_some((name, chomp))
        })
        .collect()
}

/// The exec form: the arguments start with a JSON array of strings.
fn is_json_array(args: &str) -> bool {
    let args = args.trim_start();
    args.starts_with('[')
        && serde_json::Deserializer::from_str(args).into_iter::<Vec<String>>().next().is_some_and(|r| r.is_ok())
}

/// The words of an instruction's arguments as the builders split them: at whitespace outside
/// quotes; quotes and escapes are kept in the word.
fn words(args: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut in_word, mut quoted_empty) = (false, false);
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        if quote.is_none() && c.is_whitespace() {
            if in_word && (quoted_empty || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            (in_word, quoted_empty) = (false, false);
            continue;
        }
        in_word = true;
        match quote {
            None if c == '\'' || c == '"' => (quote, quoted_empty) = (Some(c), true),
            Some(q) if c == q => quote = None,
            _ => {}
        }
        if c == escape && quote != Some('\'') {
            match chars.next() {
                Some(next) => word.extend([c, next]),
                None => quote = None, // an escape at the very end is dropped
            }
            continue;
        }
        word.push(c);
    }
    if in_word && (quoted_empty || !word.is_empty()) {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> bool {
        declares_arg(text, "tag")
    }

    #[test]
    fn arg_tag_with_or_without_a_default_in_any_case_of_the_keyword() {
        assert!(tag("FROM python:3.11\nARG tag\nENV FLYTE_INTERNAL_IMAGE $tag\n"));
        assert!(tag("FROM python:3.11\nARG tag=default\n"));
        assert!(tag("FROM python:3.11\nARG tag=\n"));
        assert!(tag("FROM python:3.11\narg tag\n"));
        assert!(tag("FROM python:3.11\n  Arg\ttag=\"a b\"\n"));
        assert!(tag("\u{feff}ARG tag\r\nFROM python:3.11\r\n"), "a BOM and CRLF lines; before the first FROM");
        assert!(tag("FROM python:3.11\nARG version=1 tag other\n"), "one ARG declaring several");
    }

    #[test]
    fn other_names_and_other_instructions_are_no_declaration() {
        assert!(!tag("FROM python:3.11\nARG tags\n"));
        assert!(!tag("FROM python:3.11\nARG mytag\n"));
        assert!(!tag("FROM python:3.11\nARG Tag\n"), "the name is case-sensitive");
        assert!(!tag("FROM python:3.11\nARG TAG=1\n"));
        assert!(!tag("FROM python:3.11\nARG tag_name=1\n"));
        assert!(!tag("FROM python:3.11\nARG x=\"tag\"\n"), "a value is no name");
        assert!(!tag("FROM python:3.11\nARG x=\"a tag\"\n"), "quoted words stay one word");
        assert!(!tag("FROM python:3.11\nENV tag=1\nLABEL tag=1\n"));
        assert!(!tag("FROM python:3.11\nONBUILD ARG tag\n"), "ONBUILD is for images built FROM this one");
        assert!(!tag("FROM python:3.11\n# ARG tag\n   # ARG tag\n"), "comments");
        assert!(!tag("FROM python:3.11\nRUN echo ARG tag\n"));
        assert!(!tag(""));
    }

    #[test]
    fn continuations_are_joined_as_the_builders_join_them() {
        // After a continued instruction, in a later stage.
        let d = "FROM python:3.11 AS deps\nRUN pip install \\\n    flytekit \\\n    pandas\n\
                 FROM deps\nARG tag\nENV FLYTE_INTERNAL_IMAGE=$tag\n";
        assert!(tag(d));
        assert!(tag("FROM x\nARG \\\n  tag\n"), "the name on a continuation line");
        assert!(tag("FROM x\nARG \\  \t\n  tag\n"), "spaces after the continuation token");
        assert!(tag("FROM x\nARG ta\\\ng\n"), "lines are joined without a space");
        assert!(tag("FROM x\nARG a \\\n# a comment\n\n  tag\n"), "comment and blank lines inside are skipped");
        // `ARG tag` continuing another instruction is part of it.
        assert!(!tag("FROM x\nRUN echo \\\nARG tag\n"));
        assert!(!tag("FROM x\nRUN echo \\\n# c\nARG tag\n"), "a comment line does not end the RUN");
        // An escaped escape token ends the line (BuildKit; buildah 1.28 joins the next line to it,
        // which leaves the argument unconsumed, a warning, rather than missing).
        assert!(tag("FROM x\nRUN echo \\\\\nARG tag\n"));
        assert!(tag("FROM x\n# x \\\nARG tag\n"), "a comment never continues");
    }

    #[test]
    fn the_escape_directive_changes_the_continuation_token() {
        let d = "# escape=`\nFROM x\nRUN echo `\nARG tag\n";
        assert!(!tag(d), "the backtick continues the RUN");
        assert!(tag("# syntax=docker/dockerfile:1\n#escape = `\nFROM x\nARG `\n tag\n"));
        // A directive after a comment or an instruction is a comment.
        assert!(tag("# hello\n# escape=`\nFROM x\nRUN echo `\nARG tag\n"));
        assert!(tag("FROM x\n# escape=`\nRUN echo `\nARG tag\n"));
        assert_eq!(escape_token("\n# escape=`\n"), '\\', "a blank line ends the directives");
    }

    #[test]
    fn heredoc_bodies_hold_no_instructions() {
        let d = "FROM x\nRUN <<EOF\nARG tag\nEOF\nARG other\n";
        assert_eq!(declared_args(d), ["other"]);
        let d = "FROM x\nCOPY <<-'END' <<two /dst/\n\tARG tag\n\tEND\nARG tag\ntwo\nARG y\n";
        assert_eq!(declared_args(d), ["y"], "two heredocs, the first with tabs stripped");
        assert!(tag("FROM x\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\nARG tag\n"), "the exec form has none");
        assert!(tag("FROM x\nRUN echo \"<<EOF\"\nARG tag\n"), "a quoted << is none");
        assert!(tag("FROM x\nENV a=<<EOF\nARG tag\n"), "only RUN, COPY and ADD have them");
        assert!(!tag("FROM x\nONBUILD RUN <<EOF\nARG tag\nEOF\n"));
    }

    #[test]
    fn instructions_keep_keyword_and_arguments() {
        let got = instructions("from  a AS b\n\nrun x \\\n y\n");
        let want = [("FROM", "a AS b"), ("RUN", "x  y")]
            .map(|(keyword, args)| Instruction { keyword: keyword.into(), args: args.into() });
        assert_eq!(got, want);
    }

    #[test]
    fn words_respect_quotes_and_escapes() {
        assert_eq!(words(r#"a="x y" 'b c' d\ e "" f"#, '\\'), [r#"a="x y""#, "'b c'", r"d\ e", r#""""#, "f"]);
        assert_eq!(words("a`\" b", '`'), ["a`\"", "b"]);
    }
}
