//! Checks between objects: a Rollout's analyses name AnalysisTemplates of
//! its namespace and give exactly the arguments they take.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ManifestError;
use crate::model::{AnalysisRef, AnalysisTemplateSpec, Object, ObjectKey, RolloutSpec};
use crate::path::FieldPath;

/// Every problem with the references between `objects` (typically what is
/// being applied together with what is already stored): analysis templates
/// a Rollout names that are not among them in its namespace, arguments a
/// template requires (declared without a value) that a reference does not
/// give, and arguments given that none of the referenced templates
/// declares. Pure; errors come in the order of `objects`.
pub fn check_references(objects: &[Object]) -> Vec<ManifestError> {
    let templates: BTreeMap<(&str, &str), &AnalysisTemplateSpec> = objects
        .iter()
        .filter_map(|o| match o {
            Object::AnalysisTemplate(t) => Some(((t.meta.namespace.as_str(), t.meta.name.as_str()), t)),
            _ => None,
        })
        .collect();
    let mut errors = Vec::new();
    for object in objects {
        if let Object::Rollout(r) = object {
            for (path, analysis) in r.analysis_refs() {
                check(object.key(), r, &path, analysis, &templates, &mut errors);
            }
        }
    }
    errors
}

fn check(
    key: ObjectKey,
    rollout: &RolloutSpec,
    path: &FieldPath,
    analysis: &AnalysisRef,
    templates: &BTreeMap<(&str, &str), &AnalysisTemplateSpec>,
    errors: &mut Vec<ManifestError>,
) {
    let namespace = rollout.meta.namespace.as_str();
    let mut error = |path: FieldPath, problem: String, fix: String| {
        errors.push(ManifestError::Reference { object: key.clone(), path, problem, fix });
    };
    let mut found = Vec::new();
    for (i, name) in analysis.templates.iter().enumerate() {
        match templates.get(&(namespace, name.as_str())) {
            Some(t) => found.push(*t),
            None => error(
                path.field("templates").index(i).field("templateName"),
                format!("there is no AnalysisTemplate {name:?} in namespace {namespace}"),
                format!("apply an AnalysisTemplate named {name} in namespace {namespace}, or fix templateName"),
            ),
        }
    }
    if found.len() < analysis.templates.len() {
        // Which arguments are missing or extra depends on the missing templates.
        return;
    }
    let names: Vec<&str> = found.iter().map(|t| t.meta.name.as_str()).collect();
    let declared: BTreeSet<&str> = found.iter().flat_map(|t| &t.args).map(|a| a.name.as_str()).collect();
    for name in &declared {
        let has_default = found.iter().flat_map(|t| &t.args).any(|a| a.name == *name && a.value.is_some());
        if !has_default && !analysis.args.contains_key(*name) {
            let owners: Vec<&str> =
                found.iter().filter(|t| t.args.iter().any(|a| a.name == *name)).map(|t| t.meta.name.as_str()).collect();
            error(
                path.field("args"),
                format!("argument {name:?} is required by analysistemplate {} but not given", owners.join(", ")),
                format!("add {{name: {name}, value: ...}} to args"),
            );
        }
    }
    for name in analysis.args.keys() {
        if !declared.contains(name.as_str()) {
            error(
                path.field("args"),
                format!("argument {name:?} is not declared by analysistemplate {}", names.join(", ")),
                "remove it, or declare it under the template's spec.args".to_string(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load;

    const TEMPLATES: &str = "apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  args: [{name: service}, {name: threshold, value: '0.05'}]
  metrics: [{name: m, provider: {berth: {restarts: {}}}}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: smoke, namespace: shop}
spec:
  metrics: [{name: m, provider: {berth: {probe: readiness}}}]
";

    fn rollout(namespace: &str, analysis: &str) -> String {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: web, namespace: {namespace}}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: web, image: 'nginx:1.27'}}]\n  strategy:\n    canary:\n      steps:\n        - setWeight: 50\n        - analysis: {analysis}\n"
        )
    }

    fn problems(text: &str) -> Vec<String> {
        let objects = load(text).unwrap_or_else(|e| panic!("{e}"));
        check_references(&objects).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn references_that_fit_pass() {
        let text = format!(
            "{TEMPLATES}---\n{}",
            rollout("default", "{templates: [{templateName: error-rate}], args: [{name: service, value: web}]}")
        );
        assert_eq!(problems(&text), Vec::<String>::new());
        let text = format!("{TEMPLATES}---\n{}", rollout("shop", "{templates: [{templateName: smoke}]}"));
        assert_eq!(problems(&text), Vec::<String>::new());
    }

    #[test]
    fn missing_templates_are_named_with_their_namespace() {
        let text = format!(
            "{TEMPLATES}---\n{}",
            rollout("shop", "{templates: [{templateName: error-rate}, {templateName: smoke}]}")
        );
        assert_eq!(
            problems(&text),
            ["rollout/shop/web: spec.strategy.canary.steps[1].analysis.templates[0].templateName: there is no AnalysisTemplate \"error-rate\" in namespace shop; apply an AnalysisTemplate named error-rate in namespace shop, or fix templateName"]
        );
        let e = &check_references(&load(&text).unwrap())[0];
        assert_eq!(e.line(), 0);
        assert_eq!(
            e.path().map(ToString::to_string).as_deref(),
            Some("spec.strategy.canary.steps[1].analysis.templates[0].templateName")
        );
    }

    #[test]
    fn arguments_must_fit_the_templates() {
        let text = format!(
            "{TEMPLATES}---\n{}",
            rollout("default", "{templates: [{templateName: error-rate}], args: [{name: threshold, value: '0.1'}, {name: region, value: eu}]}")
        );
        assert_eq!(
            problems(&text),
            [
                "rollout/web: spec.strategy.canary.steps[1].analysis.args: argument \"service\" is required by analysistemplate error-rate but not given; add {name: service, value: ...} to args",
                "rollout/web: spec.strategy.canary.steps[1].analysis.args: argument \"region\" is not declared by analysistemplate error-rate; remove it, or declare it under the template's spec.args",
            ]
        );
    }

    #[test]
    fn background_and_blue_green_analyses_are_checked_too() {
        let text = format!(
            "{TEMPLATES}---\n{}",
            rollout("default", "{templates: [{templateName: error-rate}], args: [{name: service, value: web}]}")
                .replace("      steps:", "      analysis: {templates: [{templateName: gone}]}\n      steps:")
        );
        assert_eq!(
            problems(&text),
            ["rollout/web: spec.strategy.canary.analysis.templates[0].templateName: there is no AnalysisTemplate \"gone\" in namespace default; apply an AnalysisTemplate named gone in namespace default, or fix templateName"]
        );
        let blue_green = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: api}\nspec:\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec:\n      containers: [{name: api, image: 'api:2'}]\n  strategy:\n    blueGreen:\n      activeService: api\n      postPromotionAnalysis: {templates: [{templateName: error-rate}]}\n";
        assert_eq!(
            problems(&format!("{TEMPLATES}---\n{blue_green}")),
            ["rollout/api: spec.strategy.blueGreen.postPromotionAnalysis.args: argument \"service\" is required by analysistemplate error-rate but not given; add {name: service, value: ...} to args"]
        );
    }
}
