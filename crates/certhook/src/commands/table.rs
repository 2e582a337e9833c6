//! Human output: lists as aligned columns under a header, one object as field and value
//! lines. Plain text with no borders or colour, so ids copy cleanly and `grep`/`awk` work.

use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets};

/// A placeholder for an empty cell, so that a row has a word in every column (cells with
/// spaces of their own, such as a common name, still do not split cleanly).
pub const NONE: &str = "-";

/// A cell's text on one line: a row is one line whatever an error message holds.
pub fn one_line(text: &str) -> String {
    text.split(['\r', '\n']).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn plain() -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    table
}

fn lines(table: &Table) -> Vec<String> {
    // NOTHING still pads each cell by one space on both sides.
    table.lines().map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_string()).collect()
}

/// Rows under a header; none at all when there are no rows (the caller says so on stderr).
pub fn rows<T>(header: &[&str], items: &[T], row: impl Fn(&T) -> Vec<String>) -> Vec<String> {
    if items.is_empty() {
        return Vec::new();
    }
    let mut table = plain();
    table.set_header(header.to_vec());
    for item in items {
        table.add_row(row(item).into_iter().map(|c| if c.is_empty() { NONE.to_string() } else { one_line(&c) }));
    }
    lines(&table)
}

/// One object: a field name and its value per line.
pub fn fields(pairs: &[(&str, String)]) -> Vec<String> {
    let mut table = plain();
    for (name, value) in pairs {
        table.add_row(vec![format!("{name}:"), if value.is_empty() { NONE.to_string() } else { one_line(value) }]);
    }
    if let Some(names) = table.column_mut(0) {
        names.set_constraint(ColumnConstraint::ContentWidth);
    }
    lines(&table)
}

/// A time as people read it in a table: RFC 3339 to the second, UTC.
pub fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An optional time, `-` when absent.
pub fn opt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(time).unwrap_or_else(|| NONE.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_line_up_under_their_header_with_placeholders_for_empty_cells() {
        let items = [("1", "a", ""), ("22", "bbbb", "x")];
        let out = rows(&["ID", "NAME", "NOTE"], &items, |(a, b, c)| vec![a.to_string(), b.to_string(), c.to_string()]);
        assert_eq!(out.len(), 3);
        assert!(out[0].starts_with("ID"), "{out:?}");
        let col = |line: &str, word: &str| line.find(word).unwrap();
        assert_eq!(col(&out[0], "NAME"), col(&out[1], "a"), "{out:#?}");
        assert_eq!(col(&out[0], "NAME"), col(&out[2], "bbbb"), "{out:#?}");
        assert_eq!(col(&out[0], "NOTE"), col(&out[1], "-"), "{out:#?}");
        assert!(out.iter().all(|l| l == l.trim()), "no padding at either end: {out:?}");
        assert_eq!(out[1].split_whitespace().collect::<Vec<_>>(), ["1", "a", "-"]);
    }

    #[test]
    fn a_cell_with_line_breaks_stays_on_its_row() {
        let out = rows(&["ERROR"], &["refused:\r\nbad\ngateway"], |e| vec![e.to_string()]);
        assert_eq!(out, ["ERROR", "refused: bad gateway"]);
    }

    #[test]
    fn an_empty_list_prints_nothing() {
        assert!(rows(&["ID"], &[] as &[u8], |_| vec![]).is_empty());
    }

    #[test]
    fn fields_print_one_per_line_with_aligned_values() {
        let out = fields(&[("id", "x1".into()), ("last failure", String::new())]);
        assert_eq!(out.len(), 2);
        assert!(out[0].starts_with("id:"), "{out:?}");
        assert_eq!(out[0].find("x1"), out[1].find('-'), "{out:#?}");
        assert!(out[1].starts_with("last failure:"));
    }

    #[test]
    fn long_cells_are_not_wrapped() {
        let long = "https://receiver.example.com/".to_string() + &"p".repeat(300);
        let out = rows(&["URL"], std::slice::from_ref(&long), |u| vec![u.clone()]);
        assert_eq!(out[1], long);
    }
}
