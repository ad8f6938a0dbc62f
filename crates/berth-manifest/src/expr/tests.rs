use super::*;
use proptest::prelude::*;

fn cond(text: &str) -> Condition {
    Condition::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn error(text: &str) -> String {
    match Condition::parse(text) {
        Ok(c) => panic!("{text} parsed as {:?}", c.expr()),
        Err(e) => e.to_string(),
    }
}

fn holds(text: &str, vars: Vars) -> bool {
    cond(text).eval(&vars).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn evaluates_comparisons_and_logic() {
    let v = Vars::result(0.97);
    assert!(holds("result >= 0.95", v));
    assert!(!holds("result < 0.95", v));
    assert!(holds("result > 0.9 && result <= 1", v));
    assert!(holds("result > 2 || result == 0.97", v));
    assert!(holds("!(result < 0.5)", v));
    assert!(holds("not (result < 0.5) and result != 1 or false", v));
    assert!(holds("true", v));
    assert!(!holds("false", v));
    assert!(holds("(result >= 0.9) == true", v));
    assert!(holds("result * 100 >= 95", v));
    assert!(holds("result - 1 < 0 && -result == 0 - result", v));
    assert!(holds("1 + 2 * 3 == 7 && (1 + 2) * 3 == 9 && 8 / 2 / 2 == 2 && 5 - 2 - 1 == 2", v));
    assert!(holds("1e3 == 1000 && 2.5E-1 == 0.25", v));
}

#[test]
fn reads_stable_when_given() {
    let c = cond("result <= stable * 1.1");
    assert!(c.uses(Var::Stable) && c.uses(Var::Result));
    assert_eq!(c.eval(&Vars::result(105.0).with_stable(100.0)), Ok(true));
    assert_eq!(c.eval(&Vars::result(120.0).with_stable(100.0)), Ok(false));
    assert_eq!(c.eval(&Vars::result(105.0)), Err(EvalError::Missing(Var::Stable)));
    assert_eq!(
        EvalError::Missing(Var::Stable).to_string(),
        "the condition reads `stable`, which this measurement does not give"
    );
    assert_eq!(cond("result > 0").eval(&Vars::default()), Err(EvalError::Missing(Var::Result)));
}

#[test]
fn short_circuits_left_to_right() {
    // `stable` is never read when the left side decides.
    assert_eq!(cond("result > 1 && stable > 1").eval(&Vars::result(0.0)), Ok(false));
    assert_eq!(cond("result < 1 || stable > 1").eval(&Vars::result(0.0)), Ok(true));
    assert_eq!(cond("result < 1 && stable > 1").eval(&Vars::result(0.0)), Err(EvalError::Missing(Var::Stable)));
}

#[test]
fn division_by_zero_is_an_error() {
    assert_eq!(cond("1 / result > 2").eval(&Vars::result(0.0)), Err(EvalError::DivisionByZero));
    assert_eq!(cond("1 / result > 2").eval(&Vars::result(0.25)), Ok(true));
}

#[test]
fn syntax_errors_name_the_column() {
    assert_eq!(error("result >= 0.95)"), "unexpected ')' at column 15");
    assert_eq!(error("(result >= 0.95"), "the '(' at column 1 is never closed at column 16");
    assert_eq!(error("result >="), "unexpected end of the condition at column 10");
    assert_eq!(error(""), "the condition is empty at column 1");
    assert_eq!(error("   "), "the condition is empty at column 1");
    assert_eq!(error("result = 1"), "unexpected '=': compare with == at column 8");
    assert_eq!(error("result & true"), "unexpected '&': write && for \"and\" at column 8");
    assert_eq!(error("result | true"), "unexpected '|': write || for \"or\" at column 8");
    assert_eq!(error("result >= 0.95 result"), "unexpected 'result' at column 16");
    assert_eq!(error("result >= .5"), "unexpected '.' at column 11");
    assert_eq!(error("result > 1 % 2"), "unexpected '%' at column 12");
    assert_eq!(error("résult > 1"), "unexpected 'é' at column 2");
    assert_eq!(error("é > 1)"), "unexpected 'é' at column 1", "columns count characters");
}

#[test]
fn unsupported_argo_forms_say_why() {
    assert_eq!(
        error("result[0] >= 0.95"),
        "unexpected '[': berth gives result as one number, so write result, not result[0] at column 7"
    );
    assert_eq!(error("len(result) > 0"), "len() is not supported: berth's conditions have no functions at column 1");
    assert_eq!(error("result(1) > 0"), "'result' is not a function; berth's conditions have no functions at column 1");
    assert_eq!(error("result == 'true'"), "strings are not supported: conditions compare numbers at column 11");
    assert_eq!(error("errors > 1"), "unknown name 'errors': conditions read result and stable at column 1");
    assert_eq!(error("1 < result < 2"), "comparisons do not chain ('<' after '<'): join them with && at column 12");
    assert_eq!(error("1e999 > result"), "the number 1e999 is too large at column 1");
}

#[test]
fn types_never_mix() {
    assert_eq!(error("result"), "the condition is a number, not true or false at column 1");
    assert_eq!(error("result + 1"), "the condition is a number, not true or false at column 1");
    assert_eq!(
        error("result && true"),
        "'&&' needs true or false on both sides, its left side is a number at column 1"
    );
    assert_eq!(
        error("true || (result > 1) + 1 > 0"),
        "'+' needs numbers on both sides, its left side is true or false at column 9"
    );
    assert_eq!(error("!result"), "'!' needs true or false, this is a number at column 2");
    assert_eq!(error("-true == 1"), "'-' needs a number, this is true or false at column 2");
    assert_eq!(error("true == 1"), "'==' compares true or false with a number at column 6");
    assert_eq!(error("true < false"), "'<' needs numbers on both sides, its left side is true or false at column 1");
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}true{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(error(&deep), "the condition nests deeper than 64 levels at column 65");
    let long = format!("result > 0{}", " + 1".repeat(300));
    assert_eq!(error(&long), "the condition is longer than 512 tokens at column 1030");
    assert!(Condition::parse(&format!("{}true{}", "(".repeat(60), ")".repeat(60))).is_ok());
}

#[test]
fn prints_with_the_fewest_parentheses() {
    let printed = |text: &str| cond(text).expr().to_string();
    assert_eq!(printed("((result)) >= (0.95)"), "result >= 0.95");
    assert_eq!(printed("(1 + 2) * 3 == 9 && (1 - (2 - 3)) == 2"), "(1 + 2) * 3 == 9 && 1 - (2 - 3) == 2");
    assert_eq!(printed("(true || false) && (true && false)"), "(true || false) && (true && false)");
    assert_eq!(printed("(result > 1) == (stable > 1)"), "(result > 1) == (stable > 1)");
    assert_eq!(printed("!(!true) || - -result > 0"), "!!true || --result > 0");
    assert_eq!(printed("not (result < 0.5)"), "!(result < 0.5)");
    assert_eq!(printed("result - -1 > 0.000001"), "result - -1 > 0.000001");
}

#[test]
fn conditions_compare_by_tree_and_serialise_as_text() {
    assert_eq!(cond("result>=0.95"), cond("( result >= 0.95 )"));
    assert_ne!(cond("result >= 0.95"), cond("result > 0.95"));
    let json = serde_json::to_string(&cond("result >= 0.95")).unwrap();
    assert_eq!(json, "\"result >= 0.95\"");
    let back: Condition = serde_json::from_str(&json).unwrap();
    assert_eq!(back.as_str(), "result >= 0.95");
    assert!(serde_json::from_str::<Condition>("\"result >=\"").is_err());
}

#[test]
fn hand_built_trees_fail_to_evaluate_rather_than_panic() {
    let e = Expr::Binary(BinaryOp::Add, Box::new(Expr::Bool(true)), Box::new(Expr::Number(1.0)));
    assert_eq!(e.eval(&Vars::default()), Err(EvalError::Type { op: "+", found: "true or false" }));
    let e = Expr::Binary(BinaryOp::Eq, Box::new(Expr::Bool(true)), Box::new(Expr::Number(1.0)));
    assert!(e.eval(&Vars::default()).is_err());
}

fn number() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (0u32..1000).prop_map(|n| Expr::Number(f64::from(n))),
        (0.0f64..1e9).prop_map(Expr::Number),
        Just(Expr::Var(Var::Result)),
        Just(Expr::Var(Var::Stable)),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        let op = prop_oneof![Just(BinaryOp::Add), Just(BinaryOp::Sub), Just(BinaryOp::Mul), Just(BinaryOp::Div)];
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Unary(UnaryOp::Neg, Box::new(e))),
            (op, inner.clone(), inner).prop_map(|(op, l, r)| Expr::Binary(op, Box::new(l), Box::new(r))),
        ]
    })
}

fn boolean() -> impl Strategy<Value = Expr> {
    let compare = prop_oneof![
        Just(BinaryOp::Eq),
        Just(BinaryOp::Ne),
        Just(BinaryOp::Lt),
        Just(BinaryOp::Le),
        Just(BinaryOp::Gt),
        Just(BinaryOp::Ge),
    ];
    let leaf = prop_oneof![
        any::<bool>().prop_map(Expr::Bool),
        (compare, number(), number()).prop_map(|(op, l, r)| Expr::Binary(op, Box::new(l), Box::new(r))),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        let op = prop_oneof![Just(BinaryOp::And), Just(BinaryOp::Or), Just(BinaryOp::Eq), Just(BinaryOp::Ne)];
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Unary(UnaryOp::Not, Box::new(e))),
            (op, inner.clone(), inner).prop_map(|(op, l, r)| Expr::Binary(op, Box::new(l), Box::new(r))),
        ]
    })
}

proptest! {
    #[test]
    fn printing_and_reparsing_gives_the_same_tree(e in boolean()) {
        let printed = e.to_string();
        let back = Condition::parse(&printed).map_err(|err| TestCaseError::fail(format!("{printed}: {err}")))?;
        prop_assert_eq!(back.expr(), &e, "{}", printed);
    }

    #[test]
    fn number_trees_reparse_too(e in number()) {
        let printed = e.to_string();
        prop_assert_eq!(Expr::parse(&printed).map_err(|err| TestCaseError::fail(format!("{printed}: {err}")))?, e);
    }

    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC{0,40}") {
        let _ = Condition::parse(&text);
    }

    #[test]
    fn never_panics_on_expression_like_text(text in "[ ()!&|=<>+*/.0-9a-z_\\[\\]'-]{0,60}") {
        if let Ok(c) = Condition::parse(&text) {
            // What parses prints to something that parses to the same tree.
            let again = Condition::parse(&c.expr().to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&again, &c);
            let _ = again.eval(&Vars::result(1.0).with_stable(2.0));
        }
    }

    #[test]
    fn errors_point_inside_the_text(text in "[ ()!&|=<>+*/.0-9a-z_-]{0,60}") {
        if let Err(e) = Condition::parse(&text) {
            prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{} in {:?}", e, text);
        }
    }
}
