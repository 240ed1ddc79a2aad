//! Property tests of the wire reader/editor (`wire.rs`): arbitrary bytes never panic, and on
//! messages made by this file's own encoder every edit equals re-encoding the edited field list.
//! `PROPTEST_CASES` sets the number of cases (README: Testing).

use proptest::collection::vec;
use proptest::prelude::*;

use crate::wire::*;

/// One generated field: its number, its value and how many redundant bytes its tag and
/// varints carry (overlong encodings are valid protobuf and must be copied as they are).
#[derive(Debug, Clone)]
struct Gen {
    number: u32,
    value: Value,
    pad: usize,
}

#[derive(Debug, Clone)]
enum Value {
    Varint(u64),
    Fixed64(u64),
    Len(Vec<u8>),
    Fixed32(u32),
    /// A group of leaf fields (start tag, fields, end tag).
    Group(Vec<Gen>),
}

impl Value {
    fn wire_type(&self) -> WireType {
        match self {
            Value::Varint(_) => WireType::Varint,
            Value::Fixed64(_) => WireType::Fixed64,
            Value::Len(_) => WireType::Len,
            Value::Fixed32(_) => WireType::Fixed32,
            Value::Group(_) => WireType::Group,
        }
    }
}

/// A varint written with `pad` redundant continuation bytes (at most 10 bytes in all).
fn varint_bytes(out: &mut Vec<u8>, value: u64, pad: usize) {
    let mut bytes = Vec::new();
    let mut v = value;
    loop {
        bytes.push((v & 0x7f) as u8);
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    let pad = pad.min(10 - bytes.len());
    bytes.extend(std::iter::repeat_n(0, pad));
    let last = bytes.len() - 1;
    for b in &mut bytes[..last] {
        *b |= 0x80;
    }
    out.extend(bytes);
}

/// The test's own encoding of one field: (its bytes, the range of its value in them).
fn encode(field: &Gen) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut out = Vec::new();
    let wire = match field.value {
        Value::Varint(_) => 0,
        Value::Fixed64(_) => 1,
        Value::Len(_) => 2,
        Value::Group(_) => 3,
        Value::Fixed32(_) => 5,
    };
    varint_bytes(&mut out, (u64::from(field.number) << 3) | wire, field.pad);
    let start = out.len();
    match &field.value {
        Value::Varint(v) => varint_bytes(&mut out, *v, field.pad),
        Value::Fixed64(v) => out.extend(v.to_le_bytes()),
        Value::Fixed32(v) => out.extend(v.to_le_bytes()),
        Value::Len(payload) => {
            varint_bytes(&mut out, payload.len() as u64, field.pad);
            let at = out.len();
            out.extend(payload);
            return (out, at..at + payload.len());
        }
        Value::Group(inner) => {
            for f in inner {
                out.extend(encode(f).0);
            }
            varint_bytes(&mut out, (u64::from(field.number) << 3) | 4, 0);
        }
    }
    let end = out.len();
    (out, start..end)
}

fn encode_all(fields: &[Gen]) -> Vec<u8> {
    fields.iter().flat_map(|f| encode(f).0).collect()
}

fn number() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 1u32..12, 1 => 1u32..(1 << 29)]
}

fn leaf() -> impl Strategy<Value = Gen> {
    let value = prop_oneof![
        any::<u64>().prop_map(Value::Varint),
        any::<u64>().prop_map(Value::Fixed64),
        vec(any::<u8>(), 0..40).prop_map(Value::Len),
        any::<u32>().prop_map(Value::Fixed32),
    ];
    (number(), value, prop_oneof![4 => Just(0usize), 1 => 1usize..4]).prop_map(|(number, value, pad)| Gen {
        number,
        value,
        pad,
    })
}

fn field() -> impl Strategy<Value = Gen> {
    prop_oneof![
        8 => leaf(),
        1 => (number(), vec(leaf(), 0..4)).prop_map(|(number, inner)| Gen { number, value: Value::Group(inner), pad: 0 }),
    ]
}

fn message() -> impl Strategy<Value = Vec<Gen>> {
    vec(field(), 0..12)
}

/// The expected result of inserting `encoded` for field `number`: before the first field
/// numbered higher, or at the end.
fn inserted(fields: &[Gen], encoded: &[u8], number: u32) -> Vec<u8> {
    let at = fields.iter().position(|f| f.number > number).unwrap_or(fields.len());
    let mut out = encode_all(&fields[..at]);
    out.extend(encoded);
    out.extend(encode_all(&fields[at..]));
    out
}

/// The expected result of replacing the last occurrence of `number` with `encoded`, or of
/// inserting it when there is none.
fn replaced_last(fields: &[Gen], encoded: &[u8], number: u32) -> Vec<u8> {
    match fields.iter().rposition(|f| f.number == number) {
        None => inserted(fields, encoded, number),
        Some(last) => {
            let mut out = encode_all(&fields[..last]);
            out.extend(encoded);
            out.extend(encode_all(&fields[last + 1..]));
            out
        }
    }
}

/// Runs every reader and editor on `msg`; none may panic.
fn every_entry_point(msg: &[u8], number: u32, payload: &[u8]) {
    let _ = fields(msg);
    let _ = read_varint(msg, 0);
    let _ = all_len(msg, number);
    let _ = string(msg, number);
    let _ = varint(msg, number);
    let _ = rewrite(msg, |_| Ok(Edit::Keep));
    let _ = rewrite(msg, |f| Ok(if f.number == number { Edit::Replace(payload.to_vec()) } else { Edit::Keep }));
    let _ = edit_each(msg, number, |inner| set_len(inner, 1, payload));
    let _ = edit_or_insert(msg, number, |inner| remove(inner, 1));
    let _ = set_len(msg, number, payload);
    let _ = set_varint(msg, number, payload.len() as u64);
    let _ = remove(msg, number);
    let _ = insert(msg, payload, number);
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn props_arbitrary_bytes_never_panic(msg in vec(any::<u8>(), 0..64), number in number(), payload in vec(any::<u8>(), 0..8)) {
        every_entry_point(&msg, number, &payload);
        // What parses tiles the message, and keeping every field gives the same bytes.
        if let Ok(all) = fields(&msg) {
            let mut at = 0;
            for f in &all {
                prop_assert_eq!(f.span.start, at);
                prop_assert!(f.span.start < f.value.start || f.wire_type == WireType::Group);
                prop_assert!(f.value.end <= f.span.end);
                at = f.span.end;
            }
            prop_assert_eq!(at, msg.len());
            prop_assert_eq!(rewrite(&msg, |_| Ok(Edit::Keep)).ok(), Some(msg.clone()));
        }
    }

    #[test]
    fn props_mutated_messages_never_panic(list in message(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>(), number in number()) {
        let mut msg = encode_all(&list);
        if !msg.is_empty() {
            let i = at.index(msg.len());
            msg[i] = byte;
            msg.truncate(cut.index(msg.len() + 1).max(i));
        }
        every_entry_point(&msg, number, b"x");
    }

    #[test]
    fn props_fields_read_back_what_was_encoded(list in message()) {
        let msg = encode_all(&list);
        let all = fields(&msg).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        prop_assert_eq!(all.len(), list.len());
        let mut at = 0;
        for (f, g) in all.iter().zip(&list) {
            let (bytes, value) = encode(g);
            prop_assert_eq!(f.number, g.number);
            prop_assert_eq!(f.wire_type, g.value.wire_type());
            prop_assert_eq!(f.span.clone(), at..at + bytes.len());
            prop_assert_eq!(f.value.clone(), at + value.start..at + value.end);
            match &g.value {
                Value::Varint(v) => prop_assert_eq!(read_varint(&msg, f.value.start).ok(), Some((*v, f.value.end))),
                Value::Len(payload) => prop_assert_eq!(&msg[f.value.clone()], &payload[..]),
                _ => {}
            }
            at += bytes.len();
        }
        let last_len = list.iter().rev().find_map(|g| match (&g.value, g.number == 1) {
            (Value::Len(p), true) => Some(p.as_slice()),
            _ => None,
        });
        prop_assert_eq!(crate::wire::last_len(&msg, 1).ok(), Some(last_len));
        let last_varint = list.iter().rev().find_map(|g| match (&g.value, g.number == 1) {
            (Value::Varint(v), true) => Some(*v),
            _ => None,
        });
        prop_assert_eq!(varint(&msg, 1).ok(), Some(last_varint));
    }

    #[test]
    fn props_edits_change_only_the_chosen_field(list in message(), pick in any::<prop::sample::Index>(), number in number(), new in vec(any::<u8>(), 0..20), v in any::<u64>()) {
        let msg = encode_all(&list);
        // Half the time the edited field is one the message has.
        let number = if list.is_empty() || pick.index(2) == 0 { number } else { list[pick.index(list.len())].number };
        let fail = |e: anyhow::Error| TestCaseError::fail(format!("{e:#}"));

        // edit_each: every length-delimited occurrence re-encoded with the new content (an
        // occurrence left as it was keeps its own bytes); every other field copied.
        let edited = edit_each(&msg, number, |_| Ok(new.clone())).map_err(fail)?;
        let expected: Vec<u8> = list
            .iter()
            .flat_map(|g| match &g.value {
                Value::Len(old) if g.number == number && *old != new => len_field(number, &new),
                _ => encode(g).0,
            })
            .collect();
        prop_assert_eq!(edited, expected);

        prop_assert_eq!(set_len(&msg, number, &new).map_err(fail)?, replaced_last(&list, &len_field(number, &new), number));
        prop_assert_eq!(set_varint(&msg, number, v).map_err(fail)?, replaced_last(&list, &varint_field(number, v), number));
        let kept: Vec<Gen> = list.iter().filter(|g| g.number != number).cloned().collect();
        prop_assert_eq!(remove(&msg, number).map_err(fail)?, encode_all(&kept));
        let encoded = len_field(number, &new);
        prop_assert_eq!(insert(&msg, &encoded, number).map_err(fail)?, inserted(&list, &encoded, number));

        // edit_or_insert: an edit of a field the message has is edit_each; of an absent one,
        // an insertion of what the edit made from nothing (nothing when it made nothing).
        let has = list.iter().any(|g| g.number == number && matches!(g.value, Value::Len(_)));
        let out = edit_or_insert(&msg, number, |_| Ok(new.clone())).map_err(fail)?;
        if has {
            prop_assert_eq!(out, edit_each(&msg, number, |_| Ok(new.clone())).map_err(fail)?);
        } else if new.is_empty() {
            prop_assert_eq!(out, msg.clone());
        } else {
            prop_assert_eq!(out, inserted(&list, &encoded, number));
        }
    }
}
