//! Keeping results under the character cap: long strings are cut to a common length first (head
//! and tail kept, with a marker naming what was left out), so a list of a few results with long
//! outputs keeps every result; then the longest string is cut or the longest list shortened,
//! until the JSON fits. The result says so in `truncated` and `note`.

use serde_json::{Map, Value};

/// Characters of JSON a result may take beyond its cut text for the marker and the note.
const SLACK: usize = 256;

/// Cuts `text` to at most `max` characters, keeping a third from the head and the rest from the
/// tail (the end of terminal output is usually what matters), with a marker between them that
/// says how many lines and characters were left out. Cuts fall between lines where the kept parts
/// hold a line break, so no fragment of a line looks like a line. A marker of an earlier cut
/// inside the part left out is carried over into the new one. Returns `None` when it already
/// fits.
pub fn cut_text(text: &str, max: usize) -> Option<(String, String)> {
    let n = text.chars().count();
    if n <= max {
        return None;
    }
    let keep = max.saturating_sub(200);
    // Byte offsets of the character cuts, then moved back to line boundaries.
    let at = |chars: usize| {
        text.char_indices()
            .nth(chars)
            .map_or(text.len(), |(i, _)| i)
    };
    let mut head_end = at(keep / 3);
    let mut tail_start = at(n - (keep - keep / 3));
    if let Some(i) = text[..head_end].rfind('\n') {
        head_end = i + 1;
    }
    if let Some(i) = text[tail_start..].find('\n')
        && tail_start + i + 1 < text.len()
    {
        tail_start += i + 1;
    }
    let (head, gone, tail) = (
        &text[..head_end],
        &text[head_end..tail_start],
        &text[tail_start..],
    );
    let lines = gone.matches('\n').count();
    let earlier = gone
        .lines()
        .filter(|l| l.starts_with("[… ") && l.ends_with(" …]"))
        .map(|l| {
            l.trim_start_matches("[… ")
                .trim_end_matches(" …]")
                .to_string()
        })
        .collect::<Vec<_>>();
    let mut note = format!(
        "{lines} lines ({} characters) of {n} left out to fit the {max}-character cap",
        gone.chars().count()
    );
    if !earlier.is_empty() {
        note.push_str(&format!(
            ", besides what an earlier cut left out: {}",
            earlier.join("; ")
        ));
    }
    let sep = if head.is_empty() || head.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    Some((format!("{head}{sep}[… {note} …]\n{tail}"), note))
}

fn json_len(v: &Value) -> usize {
    serde_json::to_string(v)
        .map(|s| s.chars().count())
        .unwrap_or(0)
}

/// Strings longer than this are cut before any list is shortened: a list of a few results,
/// each with a long output, keeps every result (a batch's exit codes).
const LONG_STRING: usize = 512;

/// The biggest string or array inside `v`, by serialized size, as a JSON pointer.
fn biggest(v: &Value, path: &mut String, best: &mut (usize, String)) {
    walk(v, path, &mut |x, p| {
        let l = match x {
            Value::String(s) => s.len(),
            Value::Array(a) if a.len() > 1 => json_len(x),
            _ => return,
        };
        if l > best.0 {
            *best = (l, p.to_string());
        }
    });
}

/// Calls `f` on every value inside `v` (itself first) with its JSON pointer.
fn walk(v: &Value, path: &mut String, f: &mut impl FnMut(&Value, &str)) {
    f(v, path);
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let old = path.len();
                path.push_str(&format!("/{i}"));
                walk(x, path, f);
                path.truncate(old);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                let old = path.len();
                path.push('/');
                path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                walk(x, path, f);
                path.truncate(old);
            }
        }
        _ => {}
    }
}

/// Cuts every string longer than [`LONG_STRING`] to one common length, so that `v` fits in
/// `max` (as far as strings can make it), before any list is shortened: a list of a few results
/// with long outputs keeps every result, each with a fair share of its output.
fn cut_long_strings(v: &mut Value, max: usize, notes: &mut Vec<String>) {
    let len = json_len(v);
    if len <= max {
        return;
    }
    let mut long: Vec<(String, usize)> = Vec::new();
    walk(v, &mut String::new(), &mut |x, p| {
        if let Value::String(s) = x
            && s.len() > LONG_STRING
        {
            long.push((p.to_string(), json_len(x)));
        }
    });
    if long.is_empty() {
        return;
    }
    // Each cut adds a marker of about 100 characters.
    let need = len - max + SLACK + 100 * long.len();
    let total: usize = long.iter().map(|(_, l)| l).sum();
    let mut room = total.saturating_sub(need);
    let mut sizes: Vec<usize> = long.iter().map(|(_, l)| *l).collect();
    sizes.sort_unstable();
    // The common length: strings shorter than it keep all they have. None when every string
    // fits whole (then lists are what is too long).
    let n = sizes.len();
    let Some(cap) = sizes.iter().enumerate().find_map(|(i, l)| {
        let left = n - i;
        if l * left <= room {
            room -= l;
            None
        } else {
            Some(room / left)
        }
    }) else {
        return;
    };
    let mut cut = Vec::new();
    for (p, l) in long {
        if l <= cap {
            continue;
        }
        let Some(Value::String(s)) = v.pointer_mut(&p) else {
            continue;
        };
        let chars = s.chars().count();
        let want = ((chars as u128 * cap as u128) / l.max(1) as u128) as usize;
        if let Some((text, note)) = cut_text(s, want.max(64)) {
            *s = text;
            cut.push((field_name(&p), note));
        }
    }
    match cut.as_slice() {
        [] => {}
        [_] | [_, _] | [_, _, _] => notes.extend(cut.into_iter().map(|(f, n)| format!("{f}: {n}"))),
        many => notes.push(format!(
            "{} long texts ({}, …) cut to about {cap} characters each to fit the {max}-character cap, head and tail kept",
            many.len(),
            many[0].0
        )),
    }
}

/// Shrinks a structured result until its JSON takes at most `max` characters. Returns whether it
/// cut anything; when it did, the top-level object gets `truncated: true` and a `note`.
pub fn fit(v: &mut Value, max: usize) -> bool {
    let mut notes: Vec<String> = Vec::new();
    cut_long_strings(v, max, &mut notes);
    for _ in 0..32 {
        let len = json_len(v);
        if len <= max {
            break;
        }
        let excess = len - max + SLACK;
        let mut best = (0, String::new());
        biggest(v, &mut String::new(), &mut best);
        let Some(target) = (if best.0 == 0 {
            None
        } else {
            v.pointer_mut(&best.1)
        }) else {
            break;
        };
        match target {
            Value::String(s) => {
                // The string's JSON form may be longer than the string (escapes): scale the cut.
                let chars = s.chars().count();
                let escaped = json_len(&Value::String(s.clone())).max(1);
                let keep_json = escaped.saturating_sub(excess);
                let want = ((chars as u128 * keep_json as u128) / escaped as u128) as usize;
                let want = want.max(64);
                match cut_text(s, want) {
                    Some((cut, note)) => {
                        *s = cut;
                        notes.push(format!("{}: {note}", field_name(&best.1)));
                    }
                    None => break,
                }
            }
            Value::Array(a) => {
                let total = a.len();
                let per = (json_len(&Value::Array(a.clone())) / total.max(1)).max(1);
                let drop = excess.div_ceil(per).clamp(1, total - 1);
                a.truncate(total - drop);
                notes.push(format!(
                    "{}: {drop} of {total} items left out to fit the {max}-character cap",
                    field_name(&best.1)
                ));
            }
            _ => break,
        }
    }
    if notes.is_empty() {
        return false;
    }
    if let Value::Object(o) = v {
        mark(o, &notes.join("; "));
    }
    true
}

fn field_name(pointer: &str) -> String {
    if pointer.is_empty() {
        "result".into()
    } else {
        pointer.trim_start_matches('/').replace('/', ".")
    }
}

fn mark(o: &mut Map<String, Value>, note: &str) {
    o.insert("truncated".into(), Value::Bool(true));
    let note = match o.get("note").and_then(Value::as_str) {
        Some(old) if !old.is_empty() => format!("{old}; {note}"),
        _ => note.to_string(),
    };
    o.insert("note".into(), Value::String(note));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn small_results_are_left_alone() {
        let mut v = json!({"text": "hello"});
        assert!(!fit(&mut v, 1000));
        assert_eq!(v, json!({"text": "hello"}));
    }

    #[test]
    fn long_text_keeps_head_and_tail() {
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let mut v = json!({"text": text, "cursor": "c"});
        assert!(fit(&mut v, 5_000));
        let s = serde_json::to_string(&v).unwrap();
        assert!(s.chars().count() <= 5_000, "{}", s.len());
        let t = v["text"].as_str().unwrap();
        assert!(t.starts_with("line 0\n"));
        assert!(
            t.trim_end().ends_with("line 19999"),
            "{}",
            &t[t.len() - 200..]
        );
        assert_eq!(v["truncated"], true);
        assert!(v["note"].as_str().unwrap().contains("left out"));
    }

    #[test]
    fn long_lists_are_shortened() {
        let items: Vec<Value> = (0..1000)
            .map(|i| json!({"id": i, "name": format!("session {i}")}))
            .collect();
        let mut v = json!({"sessions": items});
        assert!(fit(&mut v, 2_000));
        assert!(serde_json::to_string(&v).unwrap().len() <= 2_000);
        assert!(v["sessions"].as_array().unwrap().len() < 1000);
        assert!(v["note"].as_str().unwrap().contains("items left out"));
    }

    #[test]
    fn a_few_long_results_are_all_kept_and_cut_evenly() {
        let out: String = (0..3_000).map(|i| format!("{i}\n")).collect();
        let results: Vec<Value> = (0..4)
            .map(|i| json!({"session": i, "exit_code": i, "output": out}))
            .collect();
        let mut v = json!({"results": results});
        assert!(fit(&mut v, 20_000));
        assert!(serde_json::to_string(&v).unwrap().chars().count() <= 20_000);
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 4, "{v}");
        let lens: Vec<usize> = results
            .iter()
            .map(|r| r["output"].as_str().unwrap().len())
            .collect();
        assert!(
            lens.iter().max().unwrap() - lens.iter().min().unwrap() < 2_000,
            "{lens:?}"
        );
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r["exit_code"], i);
            assert!(r["output"].as_str().unwrap().ends_with("2999\n"), "{r}");
        }
    }

    #[test]
    fn a_cut_falls_between_lines_and_counts_what_it_leaves_out() {
        // A run's output already cut once (its marker in the middle), then cut to the cap.
        let mut text: String = (1..=3008).map(|i| format!("{i}\n")).collect();
        text.push_str("[… lines 3009-35355 of 40000 left out …]\n");
        text.extend((35356..=40000).map(|i| format!("{i}\n")));
        let (cut, note) = cut_text(&text, 10_000).unwrap();
        assert!(cut.chars().count() <= 10_000);
        for l in cut.lines().filter(|l| !l.starts_with("[…")) {
            let k: u32 = l
                .parse()
                .unwrap_or_else(|_| panic!("{l:?} is no whole line"));
            assert!((1..=40000).contains(&k));
        }
        assert!(
            note.contains("lines 3009-35355 of 40000 left out"),
            "{note}"
        );
        let kept = cut.lines().filter(|l| !l.starts_with("[…")).count();
        let said: usize = note.split(' ').next().unwrap().parse().unwrap();
        // Every line is either kept or counted (the earlier marker line is one of the counted).
        assert_eq!(kept + said, text.lines().count(), "{note}");
    }

    #[test]
    fn cut_text_respects_unicode() {
        let text = "é".repeat(1000);
        let (cut, _) = cut_text(&text, 200).unwrap();
        assert!(cut.chars().count() <= 200);
    }
}
