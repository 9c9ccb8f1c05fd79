//! In-database tests (`cargo pgrx test`). Each runs in its own transaction,
//! rolled back afterwards.

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::Uuid;

    const SEED: &str = include_str!("../tests/fixtures/seed_dataset.sql");

    /// Run `sql`; return "SQLSTATE: message" of the error it raises, or "no error".
    fn err(sql: &str) -> String {
        if !one::<bool>("SELECT to_regprocedure('pg_temp.try_sql(text)') IS NOT NULL") {
            Spi::run(
                "CREATE FUNCTION pg_temp.try_sql(q text) RETURNS text LANGUAGE plpgsql AS $$
                 BEGIN EXECUTE q; RETURN 'no error';
                 EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$",
            )
            .unwrap();
        }
        Spi::get_one_with_args::<String>("SELECT pg_temp.try_sql($1)", &[sql.into()])
            .unwrap()
            .unwrap()
    }

    fn assert_err(sql: &str, sqlstate: &str, needle: &str) {
        let e = err(sql);
        assert!(
            e.starts_with(&format!("{sqlstate}: ")),
            "{sql}\n  expected {sqlstate}, got: {e}"
        );
        assert!(
            e.contains(needle),
            "{sql}\n  expected message containing {needle:?}, got: {e}"
        );
    }

    fn one<T: FromDatum + IntoDatum>(sql: &str) -> T {
        Spi::get_one::<T>(sql).unwrap().unwrap()
    }

    fn seed() -> Uuid {
        Spi::run(SEED).unwrap();
        one("SELECT id FROM vibe_ft.datasets WHERE name = 'Coach Responses from User Feedback'")
    }

    fn dataset(name: &str) -> Uuid {
        Spi::get_one_with_args::<Uuid>(
            "INSERT INTO vibe_ft.datasets (name) VALUES ($1) RETURNING id",
            &[name.into()],
        )
        .unwrap()
        .unwrap()
    }

    // ---- placement ------------------------------------------------------

    #[pg_test]
    fn functions_and_view_are_in_public_and_data_in_vibe_ft() {
        for f in [
            "export_training_dataset_openai_jsonl",
            "should_create_finetuning_job",
            "create_finetuning_job",
            "update_finetuning_job_status",
            "get_latest_finetuned_model",
        ] {
            let n: i64 = Spi::get_one_with_args(
                "SELECT count(*) FROM pg_proc WHERE proname = $1 AND pronamespace = 'public'::regnamespace",
                &[f.into()],
            )
            .unwrap()
            .unwrap();
            assert_eq!(n, 1, "{f} must exist once in public (one function per name)");
        }
        assert!(one::<bool>(
            "SELECT to_regclass('public.finetuning_job_stats') IS NOT NULL"
        ));
        for t in ["datasets", "examples", "jobs", "job_events"] {
            assert!(
                Spi::get_one_with_args::<bool>("SELECT to_regclass('vibe_ft.' || $1) IS NOT NULL", &[t.into()])
                    .unwrap()
                    .unwrap()
            );
        }
        // Nothing is executable by PUBLIC.
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
                  JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'vibe_ft'
                 WHERE has_function_privilege('public', p.oid, 'EXECUTE')"
            ),
            0
        );
    }

    // ---- examples -------------------------------------------------------

    #[pg_test]
    fn add_example_from_a_turn_and_dedup() {
        let ds = dataset("d1");
        let args = |q: f64| -> i64 {
            Spi::get_one_with_args::<i64>(
                "SELECT vibe_ft.add_training_example($1, $2::numeric, p_system_prompt => 'You are Coach X',
                        p_user_message => 'hi', p_assistant_message => 'hello!')",
                &[ds.into(), q.into()],
            )
            .unwrap()
            .unwrap()
        };
        let a = args(7.0);
        let b = args(9.0);
        assert_eq!(a, b, "same conversation twice is stored once");
        assert_eq!(one::<i64>("SELECT count(*) FROM vibe_ft.examples"), 1);
        let msgs: pgrx::JsonB = one("SELECT messages FROM vibe_ft.examples");
        assert_eq!(
            msgs.0,
            serde_json::json!([{"role":"system","content":"You are Coach X"},{"role":"user","content":"hi"},{"role":"assistant","content":"hello!"}])
        );
        // A whole messages array with a weight-0 earlier turn.
        let id: i64 = Spi::get_one_with_args(
            "SELECT vibe_ft.add_training_example($1, 5, p_messages => $2::jsonb, p_split => 'validation')",
            &[
                ds.into(),
                r#"[{"role":"user","content":"a"},{"role":"assistant","content":"b","weight":0},{"role":"user","content":"c"},{"role":"assistant","content":"d"}]"#.into(),
            ],
        )
        .unwrap()
        .unwrap();
        assert!(id > a);
        assert_eq!(
            one::<String>("SELECT split FROM vibe_ft.examples ORDER BY id DESC LIMIT 1"),
            "validation"
        );
    }

    #[pg_test]
    fn split_is_deterministic_and_follows_the_share() {
        let ds = dataset("split");
        Spi::run_with_args(
            "UPDATE vibe_ft.datasets SET validation_share = 0.25 WHERE id = $1",
            &[ds.into()],
        )
        .unwrap();
        Spi::run_with_args(
            "INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score)
             SELECT $1, jsonb_build_array(jsonb_build_object('role','user','content','q'||i),
                                          jsonb_build_object('role','assistant','content','a'||i)), 7
               FROM generate_series(1, 2000) i",
            &[ds.into()],
        )
        .unwrap();
        let val: i64 = one("SELECT count(*) FROM vibe_ft.examples WHERE split = 'validation'");
        assert!((400..600).contains(&val), "about 25% validation, got {val}/2000");
        // Recomputing from the hash gives the stored split for every row.
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM vibe_ft.examples
                  WHERE split <> vibe_ft.split_for_hash(content_hash, 0.25)"
            ),
            0
        );
        // Same content in another dataset with the same share: same split.
        let ds2 = dataset("split2");
        Spi::run_with_args(
            "UPDATE vibe_ft.datasets SET validation_share = 0.25 WHERE id = $1",
            &[ds2.into()],
        )
        .unwrap();
        Spi::run_with_args(
            "INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score)
             SELECT $1, messages, quality_score FROM vibe_ft.examples WHERE dataset_id = $2",
            &[ds2.into(), ds.into()],
        )
        .unwrap();
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM vibe_ft.examples a JOIN vibe_ft.examples b USING (content_hash)
                  WHERE a.dataset_id <> b.dataset_id AND a.split <> b.split"
            ),
            0
        );
    }

    #[pg_test]
    fn plain_insert_is_validated_and_deduplicated() {
        let ds = dataset("plain");
        let ins = |m: &str| {
            format!("INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score) VALUES ('{ds}', '{m}', 7)")
        };
        assert_err(&ins(r#"{"role":"user"}"#), "22023", "messages must be a JSON array");
        assert_err(
            &ins(r#"[{"role":"user","content":"u"}]"#),
            "22023",
            "no assistant message",
        );
        assert_err(
            &ins(r#"[{"role":"robot","content":"u"}]"#),
            "22023",
            "messages[0].role \"robot\"",
        );
        assert_err(
            &ins(r#"[{"role":"assistant","content":7}]"#),
            "22023",
            "messages[0].content must be a string",
        );
        let ok = ins(r#"[{"role":"user","content":"u"},{"role":"assistant","content":"a"}]"#);
        assert_eq!(err(&ok), "no error");
        // Key order and whitespace do not make a new conversation.
        assert_err(
            &ins(r#"[{"content":"u", "role":"user"},{"role":"assistant",  "content":"a"}]"#),
            "23505",
            "examples_once_per_dataset",
        );
        assert_err(
            &format!("INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score) VALUES ('{ds}', '[{{\"role\":\"assistant\",\"content\":\"z\"}}]', 11)"),
            "23514",
            "quality_score",
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vibe_ft.examples"),
            1,
            "nothing half-written"
        );
    }

    #[pg_test]
    fn add_example_errors() {
        let ds = dataset("errs");
        let call = |args: &str| format!("SELECT vibe_ft.add_training_example({args})");
        assert_err(
            &call("NULL, 5, p_user_message => 'u', p_assistant_message => 'a'"),
            "22004",
            "p_dataset_id must not be NULL",
        );
        assert_err(
            &call(&format!(
                "'{ds}', NULL, p_user_message => 'u', p_assistant_message => 'a'"
            )),
            "22004",
            "p_quality_score",
        );
        assert_err(
            &call(&format!(
                "'{ds}', 10.5, p_user_message => 'u', p_assistant_message => 'a'"
            )),
            "22003",
            "between 0 and 10",
        );
        assert_err(
            &call(&format!(
                "'{ds}', -1, p_user_message => 'u', p_assistant_message => 'a'"
            )),
            "22003",
            "between 0 and 10",
        );
        assert_err(
            &call(&format!(
                "'{ds}', 5, p_user_message => 'u', p_assistant_message => 'a', p_split => 'test'"
            )),
            "22023",
            "p_split must be 'train' or 'validation'",
        );
        assert_err(
            &call(&format!("'{ds}', 5, p_user_message => 'u'")),
            "22004",
            "p_assistant_message",
        );
        assert_err(&call(&format!("'{ds}', 5")), "22004", "p_user_message (or p_messages)");
        assert_err(
            &call(&format!("'{ds}', 5, p_messages => '\"x\"'")),
            "22023",
            "invalid p_messages: messages must be a JSON array",
        );
        assert_err(
            &call(&format!("'{ds}', 5, p_messages => '[{{\"role\":\"user\",\"content\":\"u\"}},{{\"role\":\"assistant\",\"content\":{{\"a\":1}}}}]'")),
            "22023",
            "messages[1].content must be a string, got object",
        );
        assert_err(
            &call("'00000000-0000-0000-0000-000000000000', 5, p_user_message => 'u', p_assistant_message => 'a'"),
            "42704",
            "does not exist",
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM vibe_ft.examples"), 0);
    }

    // ---- export ---------------------------------------------------------

    #[pg_test]
    fn seed_export_counts_and_preview() {
        let ds = seed();
        let n: i64 = Spi::get_one_with_args(
            "SELECT count(*) FROM export_training_dataset_openai_jsonl(p_dataset_id := $1, p_split := 'train', p_min_quality_score := 6.0)",
            &[ds.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 58);
        let first: String = Spi::get_one_with_args(
            "SELECT jsonl_line FROM export_training_dataset_openai_jsonl($1, 'train', 6.0) LIMIT 1",
            &[ds.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            first,
            r#"{"messages":[{"role":"system","content":"You are Coach Decibel..."},{"role":"user","content":"What should I eat?"},{"role":"assistant","content":"Try..."}]}"#
        );
        let val: i64 = Spi::get_one_with_args(
            "SELECT count(*) FROM export_training_dataset_openai_jsonl($1, 'validation')",
            &[ds.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(val, 11);
        let all: i64 = Spi::get_one_with_args(
            "SELECT count(*) FROM export_training_dataset_openai_jsonl($1)",
            &[ds.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(all, 62, "defaults: train split, threshold 0");
    }

    #[pg_test]
    fn export_round_trips_hard_strings_byte_for_byte() {
        let ds = dataset("hard");
        let hard = [
            "quote \" backslash \\ slash / \\\" \\\\",
            "new\nline\r\ncarriage\ttab",
            "\u{1}\u{2}\u{7}\u{8}\u{b}\u{c}\u{1b}\u{1f}\u{7f}",
            "emoji 🏋️‍♀️ 👩🏽‍🚀 🇯🇵",
            "RTL مرحبا بك \u{200f} שלום",
            "combining e\u{301} a\u{308}\u{323}",
            "\u{2028}\u{2029}",
            "   leading and trailing   ",
            "{\"messages\": [1, 2]} : , ",
        ];
        for (i, s) in hard.iter().enumerate() {
            let messages = serde_json::json!([
                {"role": "system", "content": s},
                {"role": "user", "content": format!("{i}: {s}")},
                {"role": "assistant", "content": s}
            ]);
            Spi::run_with_args(
                "SELECT vibe_ft.add_training_example($1, 7, p_messages => $2)",
                &[ds.into(), pgrx::JsonB(messages).into()],
            )
            .unwrap();
        }
        let lines: Vec<String> = Spi::connect(|c| {
            c.select(
                "SELECT jsonl_line FROM export_training_dataset_openai_jsonl($1, 'train') UNION ALL
                 SELECT jsonl_line FROM export_training_dataset_openai_jsonl($1, 'validation')",
                None,
                &[ds.into()],
            )
            .unwrap()
            .map(|r| r.get::<String>(1).unwrap().unwrap())
            .collect()
        });
        assert_eq!(lines.len(), hard.len());
        let mut seen = 0;
        for line in &lines {
            assert!(!line.contains('\n'), "one line per example");
            assert!(
                line.starts_with("{\"messages\":[{\"role\":\"system\",\"content\":"),
                "{line}"
            );
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let m = v["messages"].as_array().unwrap();
            let s = m[0]["content"].as_str().unwrap();
            assert!(hard.contains(&s), "{s:?} came back changed");
            assert_eq!(m[2]["content"].as_str().unwrap(), s);
            seen += 1;
        }
        assert_eq!(seen, hard.len());
    }

    /// The binary jsonb reader must print exactly what Postgres' own printer
    /// prints (compacted), for any value: nested, wide (the 32-child offset
    /// stride), every control character, numbers of every shape, and values big
    /// enough to be compressed and TOASTed.
    #[pg_test]
    fn chat_line_matches_postgres_printer_for_any_jsonb() {
        Spi::run("CREATE TEMP TABLE j (id serial, v jsonb)").unwrap();
        Spi::run(
            r#"INSERT INTO j (v) VALUES
               ('[]'), ('{}'), ('"scalar"'), ('12.50'), ('null'), ('true'), ('[[[[[]]]]]'),
               ('[1, -1, 0.0001, 1e-20, -1.5e10, 123456789012345678901234567890.123456789, 0, -0.0]'),
               ('{"weight": 0, "role": "assistant", "content": "x", "a": {"b": [1, {"c": null}]}}'),
               ('[{"role": "user", "content": ""}, {"role": "assistant", "content": " "}]')"#,
        )
        .unwrap();
        // Every control character and the characters JSON escapes, alone and in context.
        Spi::run("INSERT INTO j (v) SELECT jsonb_build_array(chr(i), 'a' || chr(i) || 'bcdefghijklmnop' || chr(i)) FROM generate_series(1, 127) i").unwrap();
        // Wide containers: offsets stored every 32 children.
        Spi::run("INSERT INTO j (v) SELECT (SELECT jsonb_agg(i) FROM generate_series(1, n) i) FROM generate_series(30, 100, 7) n").unwrap();
        Spi::run("INSERT INTO j (v) SELECT (SELECT jsonb_object_agg('k' || i, repeat('v', i)) FROM generate_series(1, n) i) FROM generate_series(30, 100, 7) n").unwrap();
        // Large values: compressed inline or moved to TOAST.
        Spi::run(r#"INSERT INTO j (v) SELECT jsonb_build_array(jsonb_build_object('role', 'user', 'content', repeat('long é " \ text ', n))) FROM (VALUES (100), (1000), (50000)) t(n)"#).unwrap();
        Spi::run("INSERT INTO j (v) SELECT jsonb_build_array(jsonb_build_object('role', 'user', 'content', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 5000) i)))").unwrap();
        // Pseudo-random nested values.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        fn gen(next: &mut dyn FnMut() -> u64, depth: u32) -> serde_json::Value {
            use serde_json::{json, Value};
            let pick = next() % if depth > 3 { 5 } else { 7 };
            match pick {
                0 => Value::Null,
                1 => json!(next().is_multiple_of(2)),
                2 => json!((next() % 2_000_001) as i64 - 1_000_000),
                3 => json!(((next() % 1_000_000) as f64) / 1000.0),
                4 => {
                    let chars = ['a', 'é', '"', '\\', '\n', '\t', '\u{1}', '😀', 'ש', ' ', '\u{301}', '/'];
                    json!((0..next() % 40)
                        .map(|_| chars[(next() % chars.len() as u64) as usize])
                        .collect::<String>())
                }
                5 => Value::Array((0..next() % 40).map(|_| gen(next, depth + 1)).collect()),
                _ => Value::Object(
                    (0..next() % 40)
                        .map(|i| (format!("k{}{}", i, next() % 5), gen(next, depth + 1)))
                        .collect(),
                ),
            }
        }
        for _ in 0..1500 {
            let v = gen(&mut next, 0);
            Spi::run_with_args("INSERT INTO j (v) VALUES ($1)", &[pgrx::JsonB(v).into()]).unwrap();
        }
        let fallbacks_before = crate::api::export::fallbacks();
        let rows: Vec<(String, String)> = Spi::connect(|c| {
            c.select(
                "SELECT v::text, vibe_ft.openai_chat_line(v) FROM j ORDER BY id",
                None,
                &[],
            )
            .unwrap()
            .map(|r| {
                (
                    r.get::<String>(1).unwrap().unwrap(),
                    r.get::<String>(2).unwrap().unwrap(),
                )
            })
            .collect()
        });
        assert_eq!(rows.len(), 10 + 127 + 11 + 11 + 3 + 1 + 1500);
        for (printed, ours) in rows {
            let expected = crate::core::jsonl::chat_line_from_messages_json(&printed);
            assert_eq!(ours, expected, "for jsonb {printed}");
        }
        // Every line came from the binary reader, not from the fallback printer.
        assert_eq!(crate::api::export::fallbacks(), fallbacks_before);
    }

    #[pg_test]
    fn export_errors() {
        let ds = seed();
        let call = |args: &str| format!("SELECT * FROM export_training_dataset_openai_jsonl({args})");
        assert_err(&call("NULL"), "22004", "p_dataset_id must not be NULL");
        assert_err(&call(&format!("'{ds}', NULL")), "22004", "p_split must not be NULL");
        assert_err(
            &call(&format!("'{ds}', 'training'")),
            "22023",
            "p_split must be 'train' or 'validation', got 'training'",
        );
        assert_err(
            &call(&format!("'{ds}', 'train', 10.01")),
            "22003",
            "p_min_quality_score must be between 0 and 10",
        );
        assert_err(&call(&format!("'{ds}', 'train', -0.5")), "22003", "p_min_quality_score");
        assert_err(
            &call(&format!("'{ds}', 'train', NULL")),
            "22004",
            "p_min_quality_score must not be NULL",
        );
        assert_err(
            &call("'7b7d7c8e-0000-4000-8000-000000000000'"),
            "42704",
            "dataset 7b7d7c8e-0000-4000-8000-000000000000 does not exist",
        );
        // Non-constant arguments (PostgREST's LATERAL call) are checked too.
        assert_err(
            "SELECT * FROM (SELECT NULL::uuid AS d) a, LATERAL export_training_dataset_openai_jsonl(a.d) x",
            "22004",
            "p_dataset_id must not be NULL",
        );
        assert_err(
            &format!("SELECT * FROM (SELECT '{ds}'::uuid AS d, NULL::text AS s) a, LATERAL export_training_dataset_openai_jsonl(a.d, a.s) x"),
            "22004",
            "p_split must not be NULL",
        );
        // Errors come even when no row would match (the check is not per row).
        let empty = dataset("empty");
        assert_err(&call(&format!("'{empty}', 'nope'")), "22023", "p_split");
    }

    #[pg_test]
    fn export_is_inlined_and_streams_from_the_index() {
        let ds = seed();
        let plan: pgrx::Json = Spi::get_one_with_args(
            "EXPLAIN (FORMAT JSON) SELECT * FROM export_training_dataset_openai_jsonl($1, 'train', 6) LIMIT 3",
            &[ds.into()],
        )
        .unwrap()
        .unwrap();
        let text = plan.0.to_string();
        assert!(
            !text.contains("Function Scan"),
            "the export must be inlined, not materialised: {text}"
        );
        assert!(!text.contains("\"Sort\""), "no sort: rows come in index order: {text}");
    }

    // ---- decision -------------------------------------------------------

    #[pg_test]
    fn seed_decision() {
        let ds = seed();
        let (should, reason, n, days) = Spi::connect(|c| {
            let r = c
                .select(
                    "SELECT * FROM should_create_finetuning_job(p_dataset_id := $1, p_min_new_examples := 50, p_min_days_since_last_job := 0)",
                    None,
                    &[ds.into()],
                )
                .unwrap()
                .first();
            (
                r.get::<bool>(1).unwrap().unwrap(),
                r.get::<String>(2).unwrap().unwrap(),
                r.get::<i32>(3).unwrap().unwrap(),
                r.get::<i32>(4).unwrap().unwrap(),
            )
        });
        assert!(should);
        assert!(reason.starts_with("Sufficient new data: 73 examples"), "{reason}");
        assert_eq!((n, days), (73, 999));
        let reason: String =
            Spi::get_one_with_args("SELECT reason FROM should_create_finetuning_job($1)", &[ds.into()])
                .unwrap()
                .unwrap();
        assert_eq!(reason, "Insufficient new data: 73 examples, need at least 100");
    }

    #[pg_test]
    fn decision_counts_only_examples_after_the_last_successful_job() {
        let ds = seed();
        let job: Uuid = Spi::get_one_with_args("SELECT create_finetuning_job($1)", &[ds.into()])
            .unwrap()
            .unwrap();
        let r: String = Spi::get_one_with_args(
            "SELECT reason FROM should_create_finetuning_job($1, 0, 0)",
            &[ds.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(r, format!("Job already in progress: {job} is pending"));
        Spi::run_with_args(
            "SELECT update_finetuning_job_status(p_job_id => $1, p_status => 'succeeded', p_fine_tuned_model => 'ft:m')",
            &[job.into()],
        )
        .unwrap();
        let (n, days): (Option<i32>, Option<i32>) = Spi::get_two_with_args(
            "SELECT new_examples, days_since_last_job FROM should_create_finetuning_job($1, 0, 0)",
            &[ds.into()],
        )
        .unwrap();
        assert_eq!((n, days), (Some(0), Some(0)));
        Spi::run_with_args(
            "SELECT vibe_ft.add_training_example($1, 9, p_user_message => 'new', p_assistant_message => 'one')",
            &[ds.into()],
        )
        .unwrap();
        let r: String = Spi::get_one_with_args(
            "SELECT reason FROM should_create_finetuning_job($1, 1, 30)",
            &[ds.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(r, "Too soon: 0 days since the last job, need at least 30");
        // A job 40 days old: due.
        Spi::run_with_args(
            "UPDATE vibe_ft.jobs SET created_at = now() - interval '40 days' WHERE id = $1",
            &[job.into()],
        )
        .unwrap();
        let (should, r): (Option<bool>, Option<String>) = Spi::get_two_with_args(
            "SELECT should_finetune, reason FROM should_create_finetuning_job($1, 1, 30)",
            &[ds.into()],
        )
        .unwrap();
        assert_eq!(should, Some(true));
        assert_eq!(
            r.unwrap(),
            "Sufficient new data: 1 examples (minimum 1), 40 days since the last job"
        );
    }

    #[pg_test]
    fn decision_errors() {
        let ds = seed();
        assert_err(
            "SELECT * FROM should_create_finetuning_job(NULL)",
            "22004",
            "p_dataset_id must not be NULL",
        );
        assert_err(
            &format!("SELECT * FROM should_create_finetuning_job('{ds}', -1)"),
            "22003",
            "p_min_new_examples must be >= 0, got -1",
        );
        assert_err(
            &format!("SELECT * FROM should_create_finetuning_job('{ds}', 1, -30)"),
            "22003",
            "p_min_days_since_last_job must be >= 0",
        );
        assert_err(
            &format!("SELECT * FROM should_create_finetuning_job('{ds}', NULL)"),
            "22004",
            "p_min_new_examples",
        );
        assert_err(
            "SELECT * FROM should_create_finetuning_job('00000000-0000-0000-0000-000000000001')",
            "42704",
            "does not exist",
        );
    }

    // ---- jobs -----------------------------------------------------------

    #[pg_test]
    fn create_snapshots_and_allows_one_unfinished_job() {
        let ds = seed();
        let job: Uuid = Spi::get_one_with_args(
            "SELECT create_finetuning_job($1, p_hyperparameters => '{\"n_epochs\": 3}', p_suffix => 'coach')",
            &[ds.into()],
        )
        .unwrap()
        .unwrap();
        let (train, val): (Option<i32>, Option<i32>) = Spi::get_two_with_args(
            "SELECT train_examples, validation_examples FROM vibe_ft.jobs WHERE id = $1",
            &[job.into()],
        )
        .unwrap();
        assert_eq!((train, val), (Some(58), Some(11)));
        assert_eq!(one::<String>("SELECT status FROM vibe_ft.jobs"), "pending");
        assert_eq!(
            one::<String>("SELECT avg_train_quality::text FROM vibe_ft.jobs"),
            "8.00"
        );
        assert_eq!(
            one::<i64>("SELECT last_example_id - (SELECT max(id) FROM vibe_ft.examples) FROM vibe_ft.jobs"),
            0
        );
        assert_err(
            &format!("SELECT create_finetuning_job('{ds}')"),
            "23505",
            "already has an unfinished job",
        );
        // Even a plain INSERT cannot make a second unfinished job.
        assert_err(
            &format!("INSERT INTO vibe_ft.jobs (dataset_id, base_model) VALUES ('{ds}', 'm')"),
            "23505",
            "jobs_one_unfinished_per_dataset",
        );
        // Once it is finished, a new one may start.
        Spi::run_with_args(
            "SELECT update_finetuning_job_status($1, p_status => 'failed', p_error_message => 'boom')",
            &[job.into()],
        )
        .unwrap();
        assert_eq!(err(&format!("SELECT create_finetuning_job('{ds}')")), "no error");
    }

    #[pg_test]
    fn create_errors() {
        let ds = seed();
        let c = |args: &str| format!("SELECT create_finetuning_job({args})");
        assert_err(&c("NULL"), "22004", "p_dataset_id must not be NULL");
        assert_err(&c(&format!("'{ds}', NULL")), "22004", "p_base_model must not be NULL");
        assert_err(&c(&format!("'{ds}', ' '")), "22023", "p_base_model must not be empty");
        assert_err(
            &c(&format!("'{ds}', p_hyperparameters => '[1]'")),
            "22023",
            "p_hyperparameters must be a JSON object, got array",
        );
        assert_err(
            &c(&format!("'{ds}', p_hyperparameters => NULL")),
            "22004",
            "p_hyperparameters",
        );
        assert_err(
            &c(&format!("'{ds}', p_suffix => repeat('x', 65)")),
            "22023",
            "p_suffix must be 1 to 64 characters, got 65",
        );
        assert_err(&c(&format!("'{ds}', p_suffix => ''")), "22023", "p_suffix");
        assert_err(&c("'00000000-0000-0000-0000-000000000002'"), "42704", "does not exist");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM vibe_ft.jobs"),
            0,
            "nothing half-written"
        );
    }

    #[pg_test]
    fn status_machine_timestamps_and_events() {
        let ds = seed();
        let job: Uuid = Spi::get_one_with_args("SELECT create_finetuning_job($1)", &[ds.into()])
            .unwrap()
            .unwrap();
        let upd = |args: &str| Spi::run(&format!("SELECT update_finetuning_job_status({args})")).unwrap();
        upd(&format!(
            "p_job_id => '{job}', p_openai_job_id => 'ftjob-abc', p_status => 'running'"
        ));
        assert!(one::<bool>(
            "SELECT started_at IS NOT NULL AND finished_at IS NULL FROM vibe_ft.jobs"
        ));
        // The seed's poll passes only the provider's id.
        upd("p_openai_job_id => 'ftjob-abc', p_status => 'running'");
        upd(
            "p_openai_job_id => 'ftjob-abc', p_status => 'succeeded', p_fine_tuned_model => 'ft:gpt-4o-2024-08-06:org:coach:abc',
             p_training_metrics => '{\"trained_tokens\": 12345, \"status\": \"succeeded\"}'",
        );
        assert!(one::<bool>("SELECT finished_at >= started_at FROM vibe_ft.jobs"));
        assert_eq!(one::<i64>("SELECT trained_tokens FROM vibe_ft.jobs"), 12345);
        // Repeating the final status is harmless; moving away from it is not.
        upd("p_openai_job_id => 'ftjob-abc', p_status => 'succeeded'");
        assert_err(
            "SELECT update_finetuning_job_status(p_openai_job_id => 'ftjob-abc', p_status => 'running')",
            "55000",
            "job is already succeeded and finished jobs never change status (asked for running)",
        );
        assert_err(
            &format!("UPDATE vibe_ft.jobs SET status = 'queued' WHERE id = '{job}'"),
            "55000",
            "finished jobs never change status",
        );
        let events: Vec<String> = Spi::connect(|c| {
            c.select(
                "SELECT coalesce(from_status, '-') || '>' || to_status FROM vibe_ft.job_events WHERE kind = 'status' ORDER BY id",
                None,
                &[],
            )
            .unwrap()
            .map(|r| r.get::<String>(1).unwrap().unwrap())
            .collect()
        });
        assert_eq!(events, vec!["->pending", "pending>running", "running>succeeded"]);
        // The view and the model lookup.
        let (model, examples): (Option<String>, Option<i32>) =
            Spi::get_two("SELECT model_id, training_examples FROM get_latest_finetuned_model('gpt-4o-2024-08-06')")
                .unwrap();
        assert_eq!(model.as_deref(), Some("ft:gpt-4o-2024-08-06:org:coach:abc"));
        assert_eq!(examples, Some(58));
        assert_eq!(
            one::<i64>("SELECT count(*) FROM get_latest_finetuned_model('gpt-4o-mini-2024-07-18')"),
            0
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM get_latest_finetuned_model()"), 1);
        assert_eq!(
            one::<String>("SELECT dataset_name || '/' || openai_job_id || '/' || (training_duration_seconds >= 0)::text FROM finetuning_job_stats"),
            "Coach Responses from User Feedback/ftjob-abc/true"
        );
    }

    #[pg_test]
    fn update_errors() {
        let ds = seed();
        let job: Uuid = Spi::get_one_with_args("SELECT create_finetuning_job($1)", &[ds.into()])
            .unwrap()
            .unwrap();
        let u = |args: &str| format!("SELECT update_finetuning_job_status({args})");
        assert_err(
            &u("p_status => 'running'"),
            "22004",
            "p_job_id or p_openai_job_id must not be NULL",
        );
        assert_err(
            &u("p_openai_job_id => 'ftjob-nope', p_status => 'running'"),
            "42704",
            "no job has provider job id 'ftjob-nope'",
        );
        assert_err(
            &u("p_job_id => '00000000-0000-0000-0000-000000000003'"),
            "42704",
            "job 00000000-0000-0000-0000-000000000003 does not exist",
        );
        assert_err(
            &u(&format!("'{job}', p_status => 'banana'")),
            "22023",
            "p_status 'banana' is not a known job status",
        );
        assert_err(
            &u(&format!("'{job}', p_status => 'RUNNING'")),
            "22023",
            "not a known job status",
        );
        assert_err(
            &u(&format!("'{job}', p_training_metrics => '3'")),
            "22023",
            "p_training_metrics must be a JSON object",
        );
        upd_ok(&u(&format!("'{job}', 'ftjob-1', 'running'")));
        assert_err(
            &u(&format!("'{job}', p_status => 'pending'")),
            "55000",
            "cannot move back from running to pending",
        );
        assert_err(
            &u(&format!("'{job}', 'ftjob-2'")),
            "23505",
            "linked to provider job 'ftjob-1', not 'ftjob-2'",
        );
        upd_ok(&u(&format!("'{job}', p_status => 'cancelled'")));
        assert_err(
            &u(&format!("'{job}', p_status => 'queued'")),
            "55000",
            "already cancelled",
        );
        assert_eq!(
            one::<String>("SELECT status FROM vibe_ft.jobs"),
            "cancelled",
            "nothing half-written"
        );
    }

    fn upd_ok(sql: &str) {
        assert_eq!(err(sql), "no error", "{sql}");
    }

    #[pg_test]
    fn latest_model_is_the_newest_success_for_that_base_model() {
        let ds = seed();
        assert_eq!(
            one::<i64>("SELECT count(*) FROM get_latest_finetuned_model('gpt-4o-2024-08-06')"),
            0
        );
        let mk = |model: &str, base: &str, finished: &str| {
            Spi::run(&format!(
                "INSERT INTO vibe_ft.jobs (dataset_id, base_model, status, fine_tuned_model, finished_at, train_examples)
                 VALUES ('{ds}', '{base}', 'succeeded', '{model}', '{finished}', 10)"
            ))
            .unwrap()
        };
        mk("ft:old", "gpt-4o-2024-08-06", "2026-01-01");
        mk("ft:new", "gpt-4o-2024-08-06", "2026-03-01");
        mk("ft:mini", "gpt-4o-mini-2024-07-18", "2026-04-01");
        assert_eq!(
            one::<String>("SELECT model_id FROM get_latest_finetuned_model('gpt-4o-2024-08-06')"),
            "ft:new"
        );
        assert_eq!(
            one::<String>("SELECT model_id FROM get_latest_finetuned_model()"),
            "ft:mini"
        );
    }

    // ---- scheduling and retention ------------------------------------

    #[pg_test]
    fn monthly_check_creates_pending_jobs_for_due_auto_datasets() {
        let ds = seed();
        Spi::run_with_args(
            "UPDATE vibe_ft.datasets SET auto_finetune = true, min_new_examples = 50 WHERE id = $1",
            &[ds.into()],
        )
        .unwrap();
        dataset("manual"); // auto_finetune off: not checked
        let small = dataset("small");
        Spi::run_with_args(
            "UPDATE vibe_ft.datasets SET auto_finetune = true WHERE id = $1",
            &[small.into()],
        )
        .unwrap();
        let rows: Vec<(String, bool, String, bool)> = Spi::connect_mut(|c| {
            c.update(
                "SELECT dataset_name, should_finetune, reason, job_id IS NOT NULL FROM vibe_ft.run_monthly_check()",
                None,
                &[],
            )
            .unwrap()
            .map(|r| {
                (
                    r.get::<String>(1).unwrap().unwrap(),
                    r.get::<bool>(2).unwrap().unwrap(),
                    r.get::<String>(3).unwrap().unwrap(),
                    r.get::<bool>(4).unwrap().unwrap(),
                )
            })
            .collect()
        });
        assert_eq!(rows.len(), 2, "only auto datasets: {rows:?}");
        assert_eq!(rows[0].0, "Coach Responses from User Feedback");
        assert!(rows[0].1 && rows[0].3);
        assert_eq!(
            rows[1],
            (
                "small".into(),
                false,
                "Insufficient new data: 0 examples, need at least 100".into(),
                false
            )
        );
        assert_eq!(
            one::<String>("SELECT string_agg(status, ',') FROM vibe_ft.jobs"),
            "pending"
        );
        // Run again: the job in progress stops a second one.
        let again: String = one("SELECT reason FROM vibe_ft.run_monthly_check() WHERE dataset_name <> 'small'");
        assert!(again.starts_with("Job already in progress"), "{again}");
        assert_eq!(one::<i64>("SELECT count(*) FROM vibe_ft.jobs"), 1);
    }

    #[pg_test]
    fn scheduling_without_pg_cron_says_so() {
        assert_err(
            "SELECT vibe_ft.schedule_monthly_check()",
            "0A000",
            "pg_cron is not installed in this database",
        );
        assert_err(
            "SELECT vibe_ft.unschedule_monthly_check()",
            "0A000",
            "pg_cron is not installed",
        );
    }

    #[pg_test]
    fn job_events_are_capped_per_job() {
        let ds = seed();
        let job: Uuid = Spi::get_one_with_args("SELECT create_finetuning_job($1)", &[ds.into()])
            .unwrap()
            .unwrap();
        Spi::run("SET LOCAL vibe_ft.job_events_per_job = 10").unwrap();
        for i in 0..25 {
            Spi::run_with_args(
                "SELECT vibe_ft.record_job_event($1, 'note', p_message => $2)",
                &[job.into(), format!("n{i}").into()],
            )
            .unwrap();
        }
        assert_eq!(one::<i64>("SELECT count(*) FROM vibe_ft.job_events"), 10);
        assert_eq!(
            one::<String>("SELECT message FROM vibe_ft.job_events ORDER BY id DESC LIMIT 1"),
            "n24"
        );
    }

    #[pg_test]
    fn grant_access_gives_a_role_what_a_backend_needs() {
        err("SELECT 1"); // create the helper before switching roles
        Spi::run("CREATE ROLE vibe_ft_pgtest_backend NOLOGIN").unwrap();
        Spi::run("CREATE ROLE vibe_ft_pgtest_nobody NOLOGIN").unwrap();
        Spi::run("SELECT vibe_ft.grant_access('vibe_ft_pgtest_backend')").unwrap();
        let ds = seed();
        Spi::run("SET LOCAL ROLE vibe_ft_pgtest_backend").unwrap();
        let n: i64 = Spi::get_one_with_args(
            "SELECT count(*) FROM export_training_dataset_openai_jsonl($1, 'train', 6)",
            &[ds.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 58);
        let job: Uuid = Spi::get_one_with_args("SELECT create_finetuning_job($1)", &[ds.into()])
            .unwrap()
            .unwrap();
        Spi::run_with_args(
            "SELECT update_finetuning_job_status($1, 'ftjob-x', 'running')",
            &[job.into()],
        )
        .unwrap();
        assert_err(
            "SELECT vibe_ft.grant_access('vibe_ft_pgtest_nobody')",
            "42501",
            "permission denied",
        );
        Spi::run("RESET ROLE").unwrap();
        Spi::run("SET LOCAL ROLE vibe_ft_pgtest_nobody").unwrap();
        assert_err(
            &format!("SELECT * FROM should_create_finetuning_job('{ds}')"),
            "42501",
            "permission denied for function should_create_finetuning_job",
        );
        assert_err("SELECT * FROM finetuning_job_stats", "42501", "permission denied");
        assert_err(
            "SELECT * FROM vibe_ft.examples",
            "42501",
            "permission denied for schema vibe_ft",
        );
        Spi::run("RESET ROLE").unwrap();
    }

    /// The runner's steps that need no provider, inside one transaction: the
    /// files it writes hold exactly what the public export returns.
    #[pg_test]
    fn runner_exports_what_the_export_function_returns() {
        let ds = seed();
        let job: Uuid = Spi::get_one_with_args("SELECT create_finetuning_job($1, 'm')", &[ds.into()])
            .unwrap()
            .unwrap();
        let step = |expected: &str| {
            let got: String = Spi::get_one_with_args("SELECT vibe_ft.run_job_step($1)", &[job.into()])
                .unwrap()
                .unwrap();
            assert_eq!(got, expected);
        };
        step("exporting");
        step("uploading");
        for (split, n) in [("train", 58), ("validation", 11)] {
            let expected: String = Spi::get_one_with_args(
                "SELECT string_agg(jsonl_line || E'\\n', '') FROM export_training_dataset_openai_jsonl($1, $2, 6)",
                &[ds.into(), split.into()],
            )
            .unwrap()
            .unwrap();
            let file = std::fs::read_to_string(format!("vibe_ft_files/{job}-{split}.jsonl")).unwrap();
            assert_eq!(file, expected, "{split}");
            assert_eq!(file.lines().count(), n);
        }
        assert_eq!(
            one::<i32>(&format!("SELECT train_examples FROM vibe_ft.jobs WHERE id = '{job}'")),
            58
        );
        assert_eq!(
            one::<String>(&format!("SELECT cancel_finetuning_job('{job}')")),
            "cancelled",
            "no provider was involved: no key needed"
        );
        assert!(!std::path::Path::new(&format!("vibe_ft_files/{job}-train.jsonl")).exists());
        assert_err(
            "SELECT vibe_ft.run_job_step(NULL)",
            "22004",
            "p_job_id must not be NULL",
        );
    }

    /// Without shared_preload_libraries there is no worker to show or wake.
    #[pg_test]
    fn no_worker_without_preload() {
        assert!(!one::<bool>("SELECT vibe_ft.worker_loaded()"));
        assert_eq!(one::<i64>("SELECT count(*) FROM vibe_ft.worker_info()"), 0);
        Spi::run("SELECT vibe_ft.wake_worker()").unwrap();
        assert!(one::<bool>(
            "SELECT worker_pid IS NULL AND jobs_waiting = 0 FROM vibe_ft.status"
        ));
        assert_err(
            "SELECT vibe_ft.provider_key_source('mistral')",
            "22023",
            "no provider module for 'mistral'",
        );
    }

    // ---- feedback to training data (0.3.0) ----------------------------------

    /// The backend records an answer, then its user rates it.
    fn rate(answer_id: &str, user: &str, question: &str, answer: &str, up: Option<bool>, stars: Option<i32>) -> i64 {
        Spi::run_with_args(
            "SELECT record_answer($1, $2, jsonb_build_array(jsonb_build_object('role', 'user', 'content', $3::text)),
                                  $4, 'gpt-4o-2024-08-06', 'openai')",
            &[answer_id.into(), user.into(), question.into(), answer.into()],
        )
        .unwrap();
        Spi::get_one_with_args::<i64>(
            "SELECT submit_feedback($1, $3, $4, p_user_id => $2)",
            &[answer_id.into(), user.into(), up.into(), stars.into()],
        )
        .unwrap()
        .unwrap()
    }

    fn generate(ds: Uuid) -> (i64, i64, i64, i64) {
        let t = Spi::get_three_with_args::<i64, i64, i64>(
            "SELECT feedback_read, examples_added, pairs_added FROM vibe_ft.generate_examples($1)",
            &[ds.into()],
        )
        .unwrap();
        let dup: i64 = Spi::get_one_with_args("SELECT duplicates FROM vibe_ft.generate_examples($1)", &[ds.into()])
            .unwrap()
            .unwrap();
        (t.0.unwrap(), t.1.unwrap(), t.2.unwrap(), dup)
    }

    /// The SQL scoring function is the core's `Scoring`, for every rating.
    #[pg_test]
    fn feedback_score_is_the_core_scoring() {
        use crate::core::feedback::{Rating, Scoring};
        let s = Scoring::default();
        for up in [None, Some(true), Some(false)] {
            for stars in [None, Some(1), Some(2), Some(3), Some(4), Some(5)] {
                // Exact in numeric; equal to the core's float arithmetic on these values.
                let got = Spi::get_one_with_args::<f64>(
                    "SELECT vibe_ft.feedback_score($1, $2)::float8",
                    &[up.into(), stars.into()],
                )
                .unwrap();
                let want = s.score(Rating { thumbs_up: up, stars }).ok();
                assert_eq!(got, want, "{up:?} {stars:?}");
            }
        }
        assert_err("SELECT vibe_ft.feedback_score(NULL, 9)", "22003", "stars must be 1 to 5, got 9");
        assert_err("SELECT vibe_ft.feedback_score(NULL, 300)", "22003", "stars must be 1 to 5, got 300");
        assert_err("SELECT vibe_ft.feedback_score(true, NULL, 8, 2, '{1,2}')", "22023", "p_stars_scores must have 5 values");
        assert_err("SELECT vibe_ft.feedback_score(true, 3, 8, 2, '{0,NULL,5,7.5,10}')", "22004", "p_stars_scores' elements must not be NULL");
    }

    /// Incremental and idempotent: a second run adds nothing; only feedback
    /// written since the last run is read; the same conversation is one example.
    #[pg_test]
    fn generation_is_incremental_idempotent_and_deduplicated() {
        let ds = dataset("fb");
        Spi::run(&format!("UPDATE vibe_ft.datasets SET from_feedback = true WHERE id = '{ds}'")).unwrap();
        for i in 0..5 {
            rate(&format!("a{i}"), "u1", &format!("q{i}"), "fine answer", Some(true), None);
        }
        rate("dup", "u2", "q0", "fine answer", Some(true), None); // same conversation as a0
        rate("low", "u2", "q9", "meh", None, Some(2));
        assert_eq!(generate(ds), (7, 5, 0, 0));
        assert_eq!(generate(ds), (0, 0, 0, 0));
        rate("a5", "u1", "q5", "fine answer", Some(true), None);
        assert_eq!(generate(ds), (1, 1, 0, 0));
        assert_eq!(one::<i64>(&format!("SELECT count(*) FROM vibe_ft.examples WHERE dataset_id = '{ds}'")), 6);
        // Weights: the rated answer is trained.
        assert!(one::<bool>(&format!(
            "SELECT bool_and(messages -> -1 ->> 'weight' = '1') FROM vibe_ft.examples WHERE dataset_id = '{ds}'"
        )));
        // A liked and a disliked answer to one conversation make one pair.
        rate("b1", "u3", "pair me", "great answer", Some(true), Some(5));
        rate("b2", "u3", "pair me", "bad answer", Some(false), None);
        let (_, _, pairs, _) = generate(ds);
        assert_eq!(pairs, 1);
        let line: String = one(&format!(
            "SELECT jsonl_line FROM vibe_ft.export_preference_jsonl('{ds}', 'train')
             UNION ALL SELECT jsonl_line FROM vibe_ft.export_preference_jsonl('{ds}', 'validation')"
        ));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["preferred_output"][0]["content"], "great answer");
        assert_eq!(v["non_preferred_output"][0]["content"], "bad answer");
        assert_eq!(v["input"]["messages"][0]["content"], "pair me");
    }

    /// validate_dataset's token totals are the sum of the per-example counts,
    /// and it flags an example over the limit.
    #[pg_test]
    fn validation_totals_are_real_token_counts() {
        let ds = seed();
        let (tokens, sum) = Spi::get_two_with_args::<i64, i64>(
            "SELECT (SELECT tokens FROM vibe_ft.validate_dataset($1) WHERE split = 'train'),
                    (SELECT sum(vibe_ft.count_message_tokens(messages))::bigint FROM vibe_ft.examples
                      WHERE dataset_id = $1 AND split = 'train' AND quality_score >= 6)",
            &[ds.into()],
        )
        .unwrap();
        assert_eq!(tokens, sum);
        Spi::run_with_args(
            "INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score, split)
             VALUES ($1, jsonb_build_array(jsonb_build_object('role', 'user', 'content', repeat('lorem ipsum ', 40000)),
                                           jsonb_build_object('role', 'assistant', 'content', 'x')), 9, 'train')",
            &[ds.into()],
        )
        .unwrap();
        let (valid, over) = Spi::get_two_with_args::<bool, i64>(
            "SELECT valid, examples_over_limit FROM vibe_ft.validate_dataset($1) WHERE split = 'train'",
            &[ds.into()],
        )
        .unwrap();
        assert_eq!((valid, over), (Some(false), Some(1)));
        // And the runner refuses it before any provider call (no key is configured here).
        let job: Uuid = Spi::get_one_with_args("SELECT create_finetuning_job($1)", &[ds.into()]).unwrap().unwrap();
        for _ in 0..2 {
            Spi::run_with_args("SELECT vibe_ft.run_job_step($1)", &[job.into()]).unwrap();
        }
        let (status, code) = Spi::get_two_with_args::<String, String>(
            "SELECT status, error_code FROM vibe_ft.jobs WHERE id = $1",
            &[job.into()],
        )
        .unwrap();
        assert_eq!((status.as_deref(), code.as_deref()), (Some("failed"), Some("invalid_training_data")));
        assert!(!std::path::Path::new(&format!("vibe_ft_files/{job}-train.jsonl")).exists());
    }

    /// Redaction happens before an example is stored; counts are kept.
    #[pg_test]
    fn redaction_is_on_by_default_and_visible() {
        let ds = dataset("redact");
        Spi::run(&format!("UPDATE vibe_ft.datasets SET from_feedback = true WHERE id = '{ds}'")).unwrap();
        rate(
            "r1",
            "u1",
            "mail me: ana@example.org, card 4111 1111 1111 1111. My daughter Emma lives at 754 Laura Square, \
             IBAN DE89 3704 0044 0532 0130 00, her router is 192.168.1.20",
            "Sure, +44 20 7946 0958",
            Some(true),
            None,
        );
        generate(ds);
        let (text, meta) = Spi::get_two::<String, pgrx::JsonB>(&format!(
            "SELECT messages::text, metadata FROM vibe_ft.examples WHERE dataset_id = '{ds}'"
        ))
        .unwrap();
        let text = text.unwrap();
        assert!(text.contains("[email]") && text.contains("[card]") && text.contains("[phone]"), "{text}");
        assert!(!text.contains("ana@example.org") && !text.contains("4111") && !text.contains("Emma"), "{text}");
        assert!(text.contains("[name]") && text.contains("[address]") && text.contains("[iban]") && text.contains("[ip]"), "{text}");
        let counts = serde_json::json!({"emails": 1, "cards": 1, "phones": 1, "ibans": 1, "national_ids": 0, "ips": 1,
                                        "addresses": 1, "names": 1});
        assert_eq!(meta.unwrap().0["redactions"], counts);
        assert_eq!(one::<String>("SELECT vibe_ft.redact_text('write to bob@x.io')"), "write to [email]");
    }
}
