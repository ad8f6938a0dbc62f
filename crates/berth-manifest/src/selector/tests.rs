use super::*;
use proptest::prelude::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn matching_follows_kubernetes() {
    let l = labels(&[("app", "web"), ("tier", "a"), ("env", "")]);
    assert!(sel("").matches(&l));
    assert!(sel("app=web").matches(&l));
    assert!(sel("app==web").matches(&l));
    assert!(!sel("app=api").matches(&l));
    assert!(sel("app!=api").matches(&l));
    assert!(sel("missing!=x").matches(&l), "!= holds when the label is absent");
    assert!(sel("tier in (a,b)").matches(&l));
    assert!(!sel("tier notin (a,b)").matches(&l));
    assert!(sel("missing notin (a)").matches(&l), "notin holds when the label is absent");
    assert!(!sel("missing in (a)").matches(&l));
    assert!(sel("app").matches(&l));
    assert!(!sel("!app").matches(&l));
    assert!(sel("!missing").matches(&l));
    assert!(sel("env=").matches(&l), "empty values are values");
    assert!(sel("app=web,tier in (a),!missing,env").matches(&l));
    assert!(!sel("app=web,tier in (b)").matches(&l));
}

#[test]
fn canonical_form_sorts_keys_and_values() {
    let s = sel(" tier in ( b , a ) ,app = web,!old, zone ,x notin (2,1), y!=z");
    assert_eq!(s.to_string(), "app=web,!old,tier in (a,b),x notin (1,2),y!=z,zone");
    let s2 = sel("zone,y!=z,x notin (1,2),tier in (a,b),app=web,!old");
    assert_eq!(s, s2);
    assert_eq!(sel("a==b").to_string(), "a=b");
    assert_eq!(sel("a=b,a=b").to_string(), "a=b");
    assert_eq!(sel("a in ( , x)").to_string(), "a in (,x)");
    assert_eq!(sel("a in (,)").to_string(), "a in (,)");
    assert_eq!(sel("a in (,)"), sel(&sel("a in (,)").to_string()));
    assert_eq!(sel("example.com/app=v1.2").to_string(), "example.com/app=v1.2");
}

#[test]
fn syntax_errors_point_at_the_problem() {
    let cases = [
        ("a=b,", "at character 4, expected a label key, found the end"),
        ("a in b", "at character 5, expected '(' opening the list of values, found \"b\""),
        ("a in (b", "expected ',' or ')', found the end"),
        ("a>1", "found \">\" (numeric comparisons are not supported)"),
        ("a=b c", "expected ',' or the end, found \"c\""),
        ("(a)", "expected a label key, found \"(\""),
        ("!", "expected a label key after '!', found the end"),
        ("a=(b)", "expected a label value, found \"(\""),
    ];
    for (input, want) in cases {
        let err = Selector::parse(input).unwrap_err().to_string();
        assert!(err.contains(want), "{input}: {err}");
        assert!(err.starts_with(&format!("invalid selector {input:?}")), "{err}");
    }
}

#[test]
fn keys_values_and_arity_are_validated() {
    assert!(matches!(Selector::parse("-a=b"), Err(SelectorError::Key { .. })));
    assert!(matches!(Selector::parse("a=b/c"), Err(SelectorError::Value { .. })));
    let err = Selector::parse("a in ()").unwrap_err();
    assert_eq!(err.to_string(), "in on label \"a\" needs at least one value");
    assert!(Requirement::try_new("a", Operator::Equals, ["x".to_string(), "y".to_string()]).is_err());
    assert!(Requirement::try_new("a", Operator::Exists, ["x".to_string()]).is_err());
}

#[test]
fn from_labels_and_serde_use_the_canonical_form() {
    let s = Selector::from_labels(&labels(&[("tier", "web"), ("app", "shop")])).unwrap();
    assert_eq!(s.to_string(), "app=shop,tier=web");
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, "\"app=shop,tier=web\"");
    let back: Selector = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert!(serde_json::from_str::<Selector>("\"a in\"").is_err());
}

fn key() -> impl Strategy<Value = String> {
    ("([a-z0-9]([a-z0-9.-]{0,8}[a-z0-9])?/)?", "[A-Za-z0-9]([A-Za-z0-9_.-]{0,8}[A-Za-z0-9])?")
        .prop_map(|(p, n)| format!("{p}{n}"))
        .prop_filter("valid prefix", |k| crate::names::qualified_name(k).is_ok())
}

fn value() -> impl Strategy<Value = String> {
    "([A-Za-z0-9]([A-Za-z0-9_.-]{0,6}[A-Za-z0-9])?)?"
}

fn requirement() -> impl Strategy<Value = Requirement> {
    let op = prop_oneof![
        Just(Operator::Equals),
        Just(Operator::NotEquals),
        Just(Operator::In),
        Just(Operator::NotIn),
        Just(Operator::Exists),
        Just(Operator::DoesNotExist),
    ];
    (key(), op, prop::collection::vec(value(), 1..4)).prop_map(|(k, op, vals)| {
        let vals = match op {
            Operator::Equals | Operator::NotEquals => vec![vals[0].clone()],
            Operator::In | Operator::NotIn => vals,
            Operator::Exists | Operator::DoesNotExist => vec![],
        };
        Requirement::try_new(k, op, vals).unwrap()
    })
}

proptest! {
    #[test]
    fn canonical_form_round_trips(reqs in prop::collection::vec(requirement(), 0..5)) {
        let s = Selector::new(reqs);
        let text = s.to_string();
        let back = Selector::parse(&text).unwrap();
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn spacing_does_not_matter(reqs in prop::collection::vec(requirement(), 1..4)) {
        let s = Selector::new(reqs);
        let spaced = s.to_string().replace(',', " , ").replace('(', " ( ").replace(')', " ) ").replace("!=", " != ");
        prop_assert_eq!(Selector::parse(&spaced).unwrap(), s);
    }

    #[test]
    fn parse_never_panics(input in "[a-z=!(), <>in]{0,20}") {
        let _ = Selector::parse(&input);
    }

    #[test]
    fn from_labels_matches_its_labels(pairs in prop::collection::btree_map(key(), value(), 0..5)) {
        let s = Selector::from_labels(&pairs).unwrap();
        prop_assert!(s.matches(&pairs));
        let mut changed = pairs.clone();
        if let Some((k, _)) = pairs.iter().next() {
            changed.remove(k);
            prop_assert!(!s.matches(&changed));
        }
    }
}
