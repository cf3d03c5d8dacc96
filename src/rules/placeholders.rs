//! Values for Sigma `|expand` placeholders (`%name%`), from configuration.
//!
//! A rule such as SigmaHQ's "AWS Console Login Monitoring" writes
//! `src_ip|expand: '%Legitimate_IP_Ranges%'`: what is legitimate differs per
//! organisation, so the values come from a file (`--placeholders FILE`) or
//! the daemon's TOML configuration. The file is a mapping from placeholder
//! name to a list of values, in YAML:
//!
//! ```yaml
//! Legitimate_Countries: [DE, FR]
//! Legitimate_IP_Ranges:
//!   - 192.0.2.*
//!   - 198.51.100.10
//! ```
//!
//! or TOML (chosen by the `.toml` extension):
//!
//! ```toml
//! Legitimate_Countries = ["DE", "FR"]
//! ```
//!
//! Each value is a Sigma string: `*` and `?` are wildcards, and a rule value
//! with a placeholder matches if it matches with any of the values. A single
//! scalar stands for a list of one; numbers and booleans are taken as text.
//! A rule that uses a placeholder with no configured value does not load.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::RuleError;
pub use super::matcher::Placeholders;

/// One placeholder's values as configuration writes them: a scalar or a
/// list of scalars.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PlaceholderValues {
    One(Scalar),
    Many(Vec<Scalar>),
}

/// A configured value; numbers and booleans become their text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

impl PlaceholderValues {
    pub fn into_strings(self) -> Vec<String> {
        match self {
            PlaceholderValues::One(s) => vec![s.text()],
            PlaceholderValues::Many(v) => v.iter().map(Scalar::text).collect(),
        }
    }
}

/// Converts a configured mapping into [`Placeholders`].
pub fn from_config(map: HashMap<String, PlaceholderValues>) -> Placeholders {
    map.into_iter().map(|(k, v)| (k, v.into_strings())).collect()
}

/// Parses a placeholders document; `toml` selects the format.
pub fn parse(path: &str, text: &str, toml: bool) -> Result<Placeholders, RuleError> {
    let bad = |reason: String| RuleError::Placeholders {
        path: path.to_owned(),
        reason,
    };
    let map: HashMap<String, PlaceholderValues> = if toml {
        toml::from_str(text).map_err(|e| bad(e.to_string()))?
    } else {
        if text.trim().is_empty() {
            return Ok(Placeholders::new());
        }
        serde_yaml_ng::from_str(text).map_err(|e| {
            bad(format!(
                "{e} (expected a mapping from placeholder name to a list of strings)"
            ))
        })?
    };
    Ok(from_config(map))
}

/// Reads a placeholders file: TOML when it ends in `.toml`, YAML otherwise.
pub fn load(path: &Path) -> Result<Placeholders, RuleError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| RuleError::Io {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    parse(&shown, &text, toml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_toml_give_the_same_values() {
        let y = parse("p.yml", "countries: [DE, FR]\nips:\n  - 192.0.2.*\nport: 443\n", false).unwrap();
        let t = parse(
            "p.toml",
            "countries = [\"DE\", \"FR\"]\nips = [\"192.0.2.*\"]\nport = 443\n",
            true,
        )
        .unwrap();
        assert_eq!(y, t);
        assert_eq!(y["countries"], vec!["DE", "FR"]);
        assert_eq!(y["port"], vec!["443"]);
    }

    #[test]
    fn malformed_files_name_the_file_and_the_shape() {
        let e = parse("p.yml", "- a\n- b\n", false).unwrap_err().to_string();
        assert!(
            e.starts_with("p.yml: invalid placeholders file") && e.contains("mapping"),
            "{e}"
        );
        let e = parse("p.yml", "a: {nested: map}\n", false).unwrap_err().to_string();
        assert!(e.starts_with("p.yml:"), "{e}");
        let e = parse("p.toml", "a = [", true).unwrap_err().to_string();
        assert!(e.starts_with("p.toml: invalid placeholders file"), "{e}");
        assert!(parse("p.yml", "", false).unwrap().is_empty());
    }
}
