//! What a ReportComponent's aggregation may contain: an allowlist of stages and
//! operators, checked over the whole pipeline JSON.
//!
//! An allowlist, not a denylist: MongoDB keeps adding stages and operators that read
//! other collections or run code (`$lookup`, `$unionWith`, `$function`, `$accumulator`,
//! `$where`, `$out`, `$merge`, `$documents`, `$changeStream`...), and a new one must be
//! refused until someone has looked at it. The walk is bounded in depth and size, so
//! a hostile resource costs the operator (and the API, which may run the same check)
//! a bounded amount of work.

use std::fmt;

use serde_json::{Map, Value};

/// Stages a pipeline (or a `$facet` branch) may use. None of them writes, reads another
/// collection or runs code.
pub const ALLOWED_STAGES: &[&str] = &[
    "$match",
    "$group",
    "$project",
    "$addFields",
    "$set",
    "$unset",
    "$sort",
    "$limit",
    "$skip",
    "$count",
    "$unwind",
    "$bucket",
    "$bucketAuto",
    "$facet",
    "$sortByCount",
    "$replaceRoot",
    "$replaceWith",
    "$sample",
];

/// Query, expression and accumulator operators allowed inside stages. Left out on
/// purpose: `$accumulator`, `$function` and `$where` (server-side JavaScript), and every
/// stage that reaches another collection.
pub const ALLOWED_OPERATORS: &[&str] = &[
    // Query.
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$and",
    "$or",
    "$not",
    "$nor",
    "$exists",
    "$type",
    "$regex",
    "$options",
    "$all",
    "$elemMatch",
    "$size",
    "$mod",
    "$expr",
    // Arithmetic.
    "$abs",
    "$add",
    "$ceil",
    "$divide",
    "$exp",
    "$floor",
    "$ln",
    "$log",
    "$log10",
    "$multiply",
    "$pow",
    "$round",
    "$sqrt",
    "$subtract",
    "$trunc",
    // Array.
    "$arrayElemAt",
    "$arrayToObject",
    "$concatArrays",
    "$filter",
    "$first",
    "$last",
    "$indexOfArray",
    "$isArray",
    "$map",
    "$objectToArray",
    "$range",
    "$reduce",
    "$reverseArray",
    "$slice",
    "$sortArray",
    "$zip",
    "$maxN",
    "$minN",
    "$firstN",
    "$lastN",
    // Comparison and conditionals.
    "$cmp",
    "$cond",
    "$ifNull",
    "$switch",
    // Dates.
    "$dateAdd",
    "$dateDiff",
    "$dateFromParts",
    "$dateFromString",
    "$dateSubtract",
    "$dateToParts",
    "$dateToString",
    "$dateTrunc",
    "$dayOfMonth",
    "$dayOfWeek",
    "$dayOfYear",
    "$hour",
    "$isoDayOfWeek",
    "$isoWeek",
    "$isoWeekYear",
    "$millisecond",
    "$minute",
    "$month",
    "$second",
    "$week",
    "$year",
    // Literals, objects, variables.
    "$literal",
    "$mergeObjects",
    "$getField",
    "$setField",
    "$let",
    // Sets.
    "$allElementsTrue",
    "$anyElementTrue",
    "$setDifference",
    "$setEquals",
    "$setIntersection",
    "$setIsSubset",
    "$setUnion",
    // Strings.
    "$concat",
    "$indexOfBytes",
    "$indexOfCP",
    "$ltrim",
    "$regexFind",
    "$regexFindAll",
    "$regexMatch",
    "$replaceOne",
    "$replaceAll",
    "$rtrim",
    "$split",
    "$strLenBytes",
    "$strLenCP",
    "$strcasecmp",
    "$substr",
    "$substrBytes",
    "$substrCP",
    "$toLower",
    "$toString",
    "$trim",
    "$toUpper",
    // Types.
    "$convert",
    "$isNumber",
    "$toBool",
    "$toDate",
    "$toDecimal",
    "$toDouble",
    "$toInt",
    "$toLong",
    "$toObjectId",
    // Accumulators.
    "$avg",
    "$sum",
    "$max",
    "$min",
    "$push",
    "$addToSet",
    "$count",
    "$stdDevPop",
    "$stdDevSamp",
    "$top",
    "$bottom",
    "$topN",
    "$bottomN",
];

/// Deepest nesting of objects and arrays accepted.
pub const MAX_DEPTH: usize = 32;
/// Most JSON values (objects, arrays, scalars) accepted in one pipeline.
pub const MAX_VALUES: usize = 10_000;
/// Most stages in one pipeline (or one `$facet` branch).
pub const MAX_STAGES: usize = 100;

/// Why a pipeline is refused, and where: `path` is like
/// `data.pipeline[0].$facet.byOs[1].$lookup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    pub path: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A stage that is not in [`ALLOWED_STAGES`].
    StageNotAllowed(String),
    /// A `$` key that is neither an allowed operator nor an allowed stage.
    OperatorNotAllowed(String),
    /// A stage is not an object with exactly one key.
    MalformedStage,
    TooDeep,
    TooLarge,
    TooManyStages(usize),
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match &self.problem {
            Problem::StageNotAllowed(stage) => write!(
                f,
                "{path}: stage {stage} is not allowed (allowed stages: {})",
                ALLOWED_STAGES.join(" ")
            ),
            Problem::OperatorNotAllowed(operator) => write!(
                f,
                "{path}: operator {operator} is not allowed; operators that run code or \
                 reach other collections are refused"
            ),
            Problem::MalformedStage => {
                write!(f, "{path}: a stage is an object with exactly one $-key")
            }
            Problem::TooDeep => write!(f, "{path}: nested deeper than {MAX_DEPTH} levels"),
            Problem::TooLarge => {
                write!(f, "{path}: the pipeline has more than {MAX_VALUES} values")
            }
            Problem::TooManyStages(n) => {
                write!(f, "{path}: {n} stages; at most {MAX_STAGES} are allowed")
            }
        }
    }
}

impl std::error::Error for PipelineError {}

/// Checks every stage and every `$` key of `pipeline`, stopping at the first refusal.
/// `root` names the pipeline in the error's path, e.g. `data.pipeline`.
pub fn check_pipeline(pipeline: &[Map<String, Value>], root: &str) -> Result<(), PipelineError> {
    let mut walk = Walk { values: 0 };
    if pipeline.len() > MAX_STAGES {
        return Err(walk.error(root.to_owned(), Problem::TooManyStages(pipeline.len())));
    }
    for (index, stage) in pipeline.iter().enumerate() {
        walk.stage(stage, &format!("{root}[{index}]"), 1)?;
    }
    Ok(())
}

struct Walk {
    values: usize,
}

impl Walk {
    fn error(&self, path: String, problem: Problem) -> PipelineError {
        PipelineError { path, problem }
    }

    fn count(&mut self, path: &str, depth: usize) -> Result<(), PipelineError> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(self.error(path.to_owned(), Problem::TooLarge));
        }
        if depth > MAX_DEPTH {
            return Err(self.error(path.to_owned(), Problem::TooDeep));
        }
        Ok(())
    }

    fn stage(
        &mut self,
        stage: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<(), PipelineError> {
        self.count(path, depth)?;
        let mut keys = stage.iter();
        let (Some((name, body)), None) = (keys.next(), keys.next()) else {
            return Err(self.error(path.to_owned(), Problem::MalformedStage));
        };
        let path = format!("{path}.{name}");
        if !ALLOWED_STAGES.contains(&name.as_str()) {
            return Err(self.error(path, Problem::StageNotAllowed(name.clone())));
        }
        if name == "$facet" {
            return self.facet(body, &path, depth + 1);
        }
        self.value(body, &path, depth + 1)
    }

    /// `$facet`: every branch is a pipeline of its own.
    fn facet(&mut self, body: &Value, path: &str, depth: usize) -> Result<(), PipelineError> {
        self.count(path, depth)?;
        let Value::Object(branches) = body else {
            return Err(self.error(path.to_owned(), Problem::MalformedStage));
        };
        for (branch, stages) in branches {
            let branch_path = format!("{path}.{branch}");
            self.count(&branch_path, depth + 1)?;
            let Value::Array(stages) = stages else {
                return Err(self.error(branch_path, Problem::MalformedStage));
            };
            if stages.len() > MAX_STAGES {
                return Err(self.error(branch_path, Problem::TooManyStages(stages.len())));
            }
            for (index, stage) in stages.iter().enumerate() {
                let stage_path = format!("{branch_path}[{index}]");
                let Value::Object(stage) = stage else {
                    return Err(self.error(stage_path, Problem::MalformedStage));
                };
                self.stage(stage, &stage_path, depth + 2)?;
            }
        }
        Ok(())
    }

    fn value(&mut self, value: &Value, path: &str, depth: usize) -> Result<(), PipelineError> {
        self.count(path, depth)?;
        match value {
            Value::Object(object) => {
                for (key, inner) in object {
                    let inner_path = format!("{path}.{key}");
                    if key.starts_with('$') && !ALLOWED_OPERATORS.contains(&key.as_str()) {
                        return Err(
                            self.error(inner_path, Problem::OperatorNotAllowed(key.clone()))
                        );
                    }
                    self.value(inner, &inner_path, depth + 1)?;
                }
                Ok(())
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.value(item, &format!("{path}[{index}]"), depth + 1)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(pipeline: Value) -> Result<(), PipelineError> {
        let stages: Vec<Map<String, Value>> = serde_json::from_value(pipeline).expect("stages");
        check_pipeline(&stages, "data.pipeline")
    }

    #[test]
    fn usual_report_pipelines_pass() {
        check(json!([
            {"$match": {"os": {"$exists": true}, "$or": [{"cpus": {"$gte": 2}}, {"x": {"$in": [1]}}]}},
            {"$group": {"_id": "$os", "count": {"$sum": 1}, "avg": {"$avg": "$cpus"}}},
            {"$project": {"os": "$_id", "label": {"$concat": ["$os", " ", {"$toString": "$count"}]}}},
            {"$sort": {"count": -1}},
            {"$limit": 10},
            {"$facet": {"total": [{"$count": "n"}], "top": [{"$sortByCount": "$os"}]}},
            {"$bucket": {"groupBy": "$cpus", "boundaries": [0, 4, 8], "default": "more"}},
            {"$replaceRoot": {"newRoot": {"$mergeObjects": ["$$ROOT", {"a": 1}]}}},
            {"$match": {"$expr": {"$gt": [{"$dateDiff": {"startDate": "$a", "endDate": "$$NOW", "unit": "day"}}, 30]}}}
        ]))
        .expect("allowed");
        check(json!([])).expect("empty");
    }

    #[test]
    fn a_stage_outside_the_allowlist_is_named_with_its_path() {
        for stage in
            ["$lookup", "$out", "$merge", "$unionWith", "$graphLookup", "$documents", "$collStats"]
        {
            let error = check(json!([{"$match": {}}, {stage: {}}])).unwrap_err();
            assert_eq!(error.problem, Problem::StageNotAllowed(stage.into()));
            assert_eq!(error.path, format!("data.pipeline[1].{stage}"));
            assert!(error.to_string().contains(stage), "{error}");
        }
    }

    #[test]
    fn code_running_operators_are_refused_at_any_depth() {
        let error = check(json!([{"$group": {"_id": null, "x": {"$accumulator": {
            "init": "function() {}", "accumulate": "", "accumulateArgs": [], "merge": "", "lang": "js"
        }}}}]))
        .unwrap_err();
        assert_eq!(error.problem, Problem::OperatorNotAllowed("$accumulator".into()));
        assert_eq!(error.path, "data.pipeline[0].$group.x.$accumulator");
        assert!(
            error
                .to_string()
                .starts_with("data.pipeline[0].$group.x.$accumulator: operator $accumulator")
        );

        let error = check(
            json!([{"$match": {"$expr": {"$function": {"body": "x", "args": [], "lang": "js"}}}}]),
        )
        .unwrap_err();
        assert_eq!(error.path, "data.pipeline[0].$match.$expr.$function");
        let error = check(json!([{"$match": {"$where": "sleep(1000)"}}])).unwrap_err();
        assert_eq!(error.problem, Problem::OperatorNotAllowed("$where".into()));
        // Inside arrays of expressions too.
        let error =
            check(json!([{"$project": {"a": {"$add": [1, {"$function": {}}]}}}])).unwrap_err();
        assert_eq!(error.path, "data.pipeline[0].$project.a.$add[1].$function");
    }

    #[test]
    fn facet_branches_are_pipelines_checked_as_such() {
        let error = check(
            json!([{"$facet": {"a": [{"$match": {}}], "b": [{"$lookup": {"from": "Registry"}}]}}]),
        )
        .unwrap_err();
        assert_eq!(error.path, "data.pipeline[0].$facet.b[0].$lookup");
        assert_eq!(error.problem, Problem::StageNotAllowed("$lookup".into()));
        // An operator is not a stage.
        let error = check(json!([{"$facet": {"a": [{"$sum": 1}]}}])).unwrap_err();
        assert_eq!(error.problem, Problem::StageNotAllowed("$sum".into()));
        let error = check(json!([{"$facet": {"a": {"$match": {}}}}])).unwrap_err();
        assert_eq!(error.problem, Problem::MalformedStage);
    }

    #[test]
    fn a_stage_is_one_key_and_an_operator_is_not_a_stage() {
        assert_eq!(check(json!([{}])).unwrap_err().problem, Problem::MalformedStage);
        assert_eq!(
            check(json!([{"$match": {}, "$limit": 1}])).unwrap_err().problem,
            Problem::MalformedStage
        );
        assert_eq!(
            check(json!([{"$sum": 1}])).unwrap_err().problem,
            Problem::StageNotAllowed("$sum".into())
        );
        // Field names without '$' are the user's own.
        check(json!([{"$project": {"lookup": 1, "a.b": "$c"}}])).expect("plain fields");
    }

    #[test]
    fn depth_size_and_stage_count_are_bounded() {
        let mut deep = json!(1);
        for _ in 0..(MAX_DEPTH + 5) {
            deep = json!({"a": deep});
        }
        assert_eq!(check(json!([{"$match": deep}])).unwrap_err().problem, Problem::TooDeep);
        let wide: Vec<Value> = (0..MAX_VALUES).map(Value::from).collect();
        assert_eq!(
            check(json!([{"$match": {"x": {"$in": wide}}}])).unwrap_err().problem,
            Problem::TooLarge
        );
        let many: Vec<Value> = (0..=MAX_STAGES).map(|_| json!({"$limit": 1})).collect();
        assert_eq!(
            check(Value::Array(many)).unwrap_err().problem,
            Problem::TooManyStages(MAX_STAGES + 1)
        );
    }

    #[test]
    fn allowlists_have_no_code_or_cross_collection_names() {
        for name in [
            "$accumulator",
            "$function",
            "$where",
            "$lookup",
            "$graphLookup",
            "$unionWith",
            "$out",
            "$merge",
        ] {
            assert!(
                !ALLOWED_STAGES.contains(&name) && !ALLOWED_OPERATORS.contains(&name),
                "{name}"
            );
        }
    }
}
