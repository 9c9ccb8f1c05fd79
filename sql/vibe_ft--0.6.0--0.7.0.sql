-- vibe_ft 0.6.0 -> 0.7.0: redaction you can trust, measured.
--  The library redacts more kinds (IBANs, national identifiers, IP
--  addresses, postal addresses, person names; phone numbers by
--  libphonenumber's metadata) and counts each kind in an example's
--  metadata ("redactions": emails, cards, phones, ibans, national_ids, ips,
--  addresses, names). The only catalog change: generate_examples' redactions
--  column sums every kind counted, not emails, cards and phones alone, and
--  it redacts each rated answer once (its subquery was flattened, which ran
--  feedback_example twice a row).
-- Hand-written; once released, never edited. A fresh 0.7.0 install and
-- 0.6.0 + this script must define the same objects (checked by tests/e2e:
-- test_upgrade_from_0_6_0_matches_a_fresh_install).
\echo Use "ALTER EXTENSION vibe_ft UPDATE TO '0.7.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION vibe_ft.generate_examples(p_dataset_id uuid DEFAULT NULL)
RETURNS TABLE (dataset_id uuid, dataset_name text, feedback_read bigint, examples_added bigint,
               examples_updated bigint, examples_removed bigint, duplicates bigint,
               pairs_added bigint, pairs_updated bigint, pairs_removed bigint, redactions bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d vibe_ft.datasets;
    hi bigint;
    fn text;
    redact_text text;
    redact_msgs text;
    qualifying bigint;
    n bigint;
    m bigint;
    k bigint;
    chunk_updated bigint;
    lo bigint;
    up_to bigint;
    -- Changes per chunk: each chunk's statements end (and Postgres' queue of
    -- foreign-key checks with them) before the next, so memory stays flat.
    chunk constant bigint := 100000;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'vibe_ft.generate_examples needs READ COMMITTED (it reads feedback committed while it waits)'
            USING ERRCODE = '25000';
    END IF;
    IF p_dataset_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM vibe_ft.datasets x WHERE x.id = p_dataset_id) THEN
        RAISE EXCEPTION 'dataset % does not exist (p_dataset_id)', p_dataset_id USING ERRCODE = '42704';
    END IF;
    -- An erasure (forget_user) in flight finishes first, and none starts until
    -- this run ends: nothing it deletes can come back as an example.
    PERFORM pg_advisory_xact_lock_shared(1986426113, 2);
    -- Wait for feedback writers in flight, then read the newest change number:
    -- everything up to it is committed and visible to the statements below.
    -- The lock is a transaction lock taken in a block that then rolls back, so
    -- it is held for an instant only and no cancel or error can leave it
    -- behind (a session lock would outlive them in a pooled connection and
    -- block every feedback writer).
    BEGIN
        PERFORM pg_advisory_xact_lock(1986426113, 1);
        SELECT coalesce(max(f.change_seq), 0) INTO hi FROM vibe_ft.feedback f;
        RAISE EXCEPTION USING ERRCODE = 'VF001';  -- ends the block, and the lock with it
    EXCEPTION WHEN SQLSTATE 'VF001' THEN
        NULL;
    END;

    FOR d IN SELECT * FROM vibe_ft.datasets x
              WHERE (p_dataset_id IS NULL AND x.from_feedback) OR x.id = p_dataset_id
              ORDER BY x.name
    LOOP
        -- One run per dataset at a time; a second concurrent run waits, then finds nothing new.
        SELECT * INTO d FROM vibe_ft.datasets x WHERE x.id = d.id FOR NO KEY UPDATE;
        dataset_id := d.id;
        dataset_name := d.name;
        feedback_read := 0; examples_added := 0; examples_updated := 0; examples_removed := 0;
        duplicates := 0; pairs_added := 0; pairs_updated := 0; pairs_removed := 0; redactions := 0;
        IF hi <= d.feedback_watermark THEN
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF d.redact AND d.redact_function IS NOT NULL THEN
            fn := vibe_ft.check_redact_function(d.redact_function);
            redact_text := fn || '(%s)';
            redact_msgs := format(
                '(SELECT jsonb_agg(CASE WHEN jsonb_typeof(el->''content'') = ''string''
                                        THEN jsonb_set(el, ''{content}'', to_jsonb(%s(el->>''content''))) ELSE el END
                                   ORDER BY o)
                    FROM jsonb_array_elements(%%s) WITH ORDINALITY AS t(el, o))', fn);
        ELSE
            redact_text := '%s';
            redact_msgs := '%s';
        END IF;

        lo := d.feedback_watermark;
        WHILE lo < hi LOOP
            up_to := least(lo + chunk, hi);
            SELECT count(*),
                   count(*) FILTER (WHERE vibe_ft.feedback_score(f.thumbs_up, f.stars, d.score_thumbs_up,
                                      d.score_thumbs_down, d.score_stars) >= d.min_quality_score)
              INTO n, qualifying
              FROM vibe_ft.feedback f
             WHERE f.change_seq > lo AND f.change_seq <= up_to
               AND (f.thumbs_up IS NOT NULL OR f.stars IS NOT NULL)
               AND (d.feedback_persona IS NULL OR f.persona = d.feedback_persona);
            feedback_read := feedback_read + n;

            -- Examples of re-rated answers whose score changed and still qualifies.
            WITH up AS (
                UPDATE vibe_ft.examples e SET quality_score = s.score
                  FROM (SELECT f.id::text AS sid,
                               vibe_ft.feedback_score(f.thumbs_up, f.stars, d.score_thumbs_up,
                                                      d.score_thumbs_down, d.score_stars) AS score
                          FROM vibe_ft.feedback f
                         WHERE f.change_seq > lo AND f.change_seq <= up_to
                           AND (d.feedback_persona IS NULL OR f.persona = d.feedback_persona)) s
                 WHERE e.source = 'feedback' AND e.source_id = s.sid AND e.dataset_id = d.id
                   AND s.score >= d.min_quality_score AND e.quality_score <> s.score
                RETURNING 1)
            SELECT count(*) INTO chunk_updated FROM up;
            examples_updated := examples_updated + chunk_updated;

            -- New examples of rated answers that qualify, streamed from the
            -- changed feedback; a conversation already in the dataset is skipped.
            EXECUTE format($q$
                WITH ins AS (
                    INSERT INTO vibe_ft.examples AS e (dataset_id, messages, quality_score, source, source_id, metadata)
                    SELECT $9, %s, b.score, 'feedback', b.id::text,
                           jsonb_build_object('model', b.model, 'provider', b.provider, 'persona', b.persona,
                                              'redactions', b.x->'redactions')
                      FROM (SELECT f.id, f.model, f.provider, f.persona, s.score,
                                   vibe_ft.feedback_example(f.messages, f.answer, $6) AS x
                              FROM vibe_ft.feedback f
                             CROSS JOIN LATERAL (SELECT vibe_ft.feedback_score(f.thumbs_up, f.stars, $3, $4, $5) AS score) s
                             WHERE f.change_seq > $1 AND f.change_seq <= $2
                               AND ($7::text IS NULL OR f.persona = $7)
                               AND s.score >= $8
                            -- OFFSET 0 keeps the subquery: flattened, feedback_example
                            -- (redaction) would run once per use of b.x, twice a row.
                            OFFSET 0) b
                    ON CONFLICT (dataset_id, content_hash) DO NOTHING
                    RETURNING (e.metadata -> 'redactions') AS r
                )
                SELECT count(*), coalesce(sum((r->>'emails')::int + (r->>'cards')::int + (r->>'phones')::int
                                              + (r->>'ibans')::int + (r->>'national_ids')::int + (r->>'ips')::int
                                              + (r->>'addresses')::int + (r->>'names')::int), 0)
                  FROM ins
                $q$, format(redact_msgs, 'b.x->''messages'''))
              INTO n, m
              USING lo, up_to, d.score_thumbs_up, d.score_thumbs_down,
                    d.score_stars, d.redact, d.feedback_persona, d.min_quality_score, d.id;
            examples_added := examples_added + n;
            redactions := redactions + m;
            duplicates := duplicates + qualifying - n - chunk_updated;

            -- Examples whose rating no longer qualifies (a re-rating down).
            WITH gone AS (
                DELETE FROM vibe_ft.examples e
                 USING vibe_ft.feedback f
                 WHERE e.source = 'feedback' AND e.source_id = f.id::text AND e.dataset_id = d.id
                   AND f.change_seq > lo AND f.change_seq <= up_to
                   AND ((d.feedback_persona IS NOT NULL AND f.persona IS DISTINCT FROM d.feedback_persona)
                        OR coalesce(vibe_ft.feedback_score(f.thumbs_up, f.stars, d.score_thumbs_up,
                                        d.score_thumbs_down, d.score_stars) < d.min_quality_score, true))
                RETURNING 1)
            SELECT count(*) INTO n FROM gone;
            examples_removed := examples_removed + n;

            -- Preference pairs of every conversation prefix that changed: its best
            -- liked answer against its worst disliked one.
            EXECUTE format($q$
                WITH prefixes AS (
                    SELECT DISTINCT f.prefix_hash FROM vibe_ft.feedback f
                     WHERE f.change_seq > $1 AND f.change_seq <= $2
                ), rated AS (
                    SELECT f.id, f.prefix_hash, vibe_ft.feedback_score(f.thumbs_up, f.stars, $3, $4, $5) AS score
                      FROM vibe_ft.feedback f JOIN prefixes p ON p.prefix_hash = f.prefix_hash
                     WHERE ($7::text IS NULL OR f.persona = $7)
                ), best AS (
                    SELECT DISTINCT ON (prefix_hash) * FROM rated WHERE score >= $8
                     ORDER BY prefix_hash, score DESC, id
                ), worst AS (
                    SELECT DISTINCT ON (prefix_hash) * FROM rated WHERE score <= $10
                     ORDER BY prefix_hash, score ASC, id
                ), pairs AS (
                    SELECT b.prefix_hash, fb.messages, fb.answer AS preferred, fw.answer AS non_preferred,
                           b.id AS preferred_id, w.id AS non_preferred_id, b.score
                      FROM best b JOIN worst w ON w.prefix_hash = b.prefix_hash
                      JOIN vibe_ft.feedback fb ON fb.id = b.id
                      JOIN vibe_ft.feedback fw ON fw.id = w.id
                     WHERE fb.answer <> fw.answer
                ), gone AS (
                    DELETE FROM vibe_ft.preference_examples pe
                     USING prefixes p
                     WHERE pe.prefix_hash = p.prefix_hash AND pe.dataset_id = $9
                       AND NOT EXISTS (SELECT 1 FROM pairs x WHERE x.prefix_hash = pe.prefix_hash)
                    RETURNING 1
                ), up AS (
                    INSERT INTO vibe_ft.preference_examples AS pe
                           (dataset_id, prefix_hash, input, preferred, non_preferred,
                            preferred_feedback_id, non_preferred_feedback_id, quality_score, split)
                    SELECT $9, x.prefix_hash, %s, %s, %s, x.preferred_id, x.non_preferred_id, x.score,
                           vibe_ft.split_for_hash(x.prefix_hash, $11)
                      FROM pairs x
                    ON CONFLICT (prefix_hash, dataset_id) DO UPDATE
                       SET input = EXCLUDED.input, preferred = EXCLUDED.preferred, non_preferred = EXCLUDED.non_preferred,
                           preferred_feedback_id = EXCLUDED.preferred_feedback_id,
                           non_preferred_feedback_id = EXCLUDED.non_preferred_feedback_id,
                           quality_score = EXCLUDED.quality_score, updated_at = now()
                     WHERE (pe.preferred_feedback_id, pe.non_preferred_feedback_id, pe.quality_score, pe.preferred, pe.non_preferred)
                           IS DISTINCT FROM (EXCLUDED.preferred_feedback_id, EXCLUDED.non_preferred_feedback_id,
                                             EXCLUDED.quality_score, EXCLUDED.preferred, EXCLUDED.non_preferred)
                    RETURNING (xmax = 0) AS inserted
                )
                SELECT (SELECT count(*) FROM gone), count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
                  FROM up
                $q$,
                format(redact_msgs, 'CASE WHEN $6 THEN vibe_ft.redact_messages(x.messages) ELSE x.messages END'),
                format(redact_text, 'CASE WHEN $6 THEN vibe_ft.redact_text(x.preferred) ELSE x.preferred END'),
                format(redact_text, 'CASE WHEN $6 THEN vibe_ft.redact_text(x.non_preferred) ELSE x.non_preferred END'))
              INTO n, m, k
              USING lo, up_to, d.score_thumbs_up, d.score_thumbs_down,
                    d.score_stars, d.redact, d.feedback_persona, d.min_quality_score, d.id,
                    d.max_rejected_score, d.validation_share;

            pairs_removed := pairs_removed + n;
            pairs_added := pairs_added + m;
            pairs_updated := pairs_updated + k;
            lo := up_to;
        END LOOP;
        UPDATE vibe_ft.datasets x SET feedback_watermark = hi, updated_at = now() WHERE x.id = d.id;
        RETURN NEXT;
    END LOOP;
END
$$;
