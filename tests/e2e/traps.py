"""Traps a hostile role plants for vibe_ft's SQL, generated from the catalog.

The role can create objects in `public` and in a schema of its own that the
victim superuser has first in its search_path. It plants:

- for every pair of the types vibe_ft's SQL touches (int2, int4, int8,
  numeric, float8, text, uuid, jsonb, bytea, boolean, timestamptz, interval,
  and arrays of each) and every binary operator name pg_catalog defines, an
  operator of exactly that signature wherever pg_catalog has none (an exact
  match in an earlier schema beats pg_catalog's coerced one: `numeric /
  integer`); the same for prefix operators;
- for every function name that vibe_ft's SQL calls (found in its sources),
  overloads that would win: each argument position of each pg_catalog
  signature with each of those types where pg_catalog has no exact match, and
  all-text variants (what unknown literals prefer);
- views with the names of vibe_ft's tables and views, with their columns.

A trap counts that it ran (a sequence: it survives a rollback), warns in the
server log, records what it was, and tries ALTER ROLE ... SUPERUSER for its
owner. After a workload, `fired(c)` says whether any did."""

import glob
import os
import re

from harness import ROOT

HOSTILE = "regress_hostile"
TYPES = ["int2", "int4", "int8", "numeric", "float8", "text", "uuid", "jsonb", "bytea", "bool", "timestamptz",
         "interval"]


def called_function_names():
    """Identifiers followed by '(' in vibe_ft's SQL and in the Rust that runs SQL."""
    names = set()
    files = [os.path.join(ROOT, "sql", "bootstrap.sql"), os.path.join(ROOT, "sql", "finalize.sql")]
    files += glob.glob(os.path.join(ROOT, "src", "**", "*.rs"), recursive=True)
    for f in files:
        with open(f, encoding="utf-8") as fh:
            names.update(m.lower() for m in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", fh.read()))
    return sorted(names)


# The harness's own statements pin their search_path: the traps are planted in
# public, which sessions search by default (they caught this harness first).
PIN = "SET search_path = pg_catalog, pg_temp;\n"

SETUP = PIN + r"""
CREATE ROLE {hostile} LOGIN;
GRANT CREATE ON SCHEMA public TO {hostile};
CREATE SCHEMA hostile AUTHORIZATION {hostile};
SET ROLE {hostile};
GRANT USAGE ON SCHEMA hostile TO PUBLIC;
CREATE SEQUENCE hostile.fired_seq;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE hostile.fired_seq TO PUBLIC;
CREATE TABLE hostile.fired (what text, by_role text DEFAULT current_user, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON hostile.fired TO PUBLIC;
CREATE FUNCTION hostile.fire(what text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_catalog.nextval('hostile.fired_seq');
    RAISE WARNING 'TRAP FIRED: % (as %)', what, current_user;
    BEGIN
        EXECUTE 'ALTER ROLE {hostile} SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    INSERT INTO hostile.fired (what) VALUES (what);
    RETURN NULL;
END $f$;
"""

PLANT = PIN + r"""
SET ROLE {hostile};
DO $plant$
DECLARE
    base regtype[] := ARRAY[{types}]::regtype[];
    types regtype[];
    s text;
    rec record;
    made integer := 0;
    skipped integer := 0;
    sig text;
BEGIN
    SELECT base || array_agg(t.typarray::regtype ORDER BY u.o) INTO types
      FROM unnest(base) WITH ORDINALITY AS u(b, o) JOIN pg_type t ON t.oid = u.b;
    FOREACH s IN ARRAY ARRAY['hostile', 'public'] LOOP
        -- The functions behind the operators: one per signature and kind of result.
        FOR rec IN SELECT l.t AS l, r.t AS r FROM unnest(types) l(t), unnest(types) r(t) LOOP
            EXECUTE format('CREATE FUNCTION %I.trap_bool(%s, %s) RETURNS boolean LANGUAGE sql AS %L',
                           s, rec.l, rec.r, format('SELECT hostile.fire(%L)', s || ': operator on ' || rec.l || ', ' || rec.r));
            EXECUTE format('CREATE FUNCTION %I.trap_val(%s, %s) RETURNS %s LANGUAGE sql AS %L',
                           s, rec.l, rec.r, rec.l, format('SELECT NULL::%s FROM (SELECT hostile.fire(%L)) f', rec.l, s || ': operator on ' || rec.l || ', ' || rec.r));
        END LOOP;
        FOR rec IN SELECT r.t AS r FROM unnest(types) r(t) LOOP
            EXECUTE format('CREATE FUNCTION %I.trap_prefix(%s) RETURNS %s LANGUAGE sql AS %L',
                           s, rec.r, rec.r, format('SELECT NULL::%s FROM (SELECT hostile.fire(%L)) f', rec.r, s || ': prefix operator on ' || rec.r));
        END LOOP;
        -- Binary operators: every pg_catalog name, every pair, where pg_catalog has no exact match.
        FOR rec IN
            SELECT o.name, o.bool, l.t AS l, r.t AS r
              FROM (SELECT oprname AS name, bool_and(oprresult = 'bool'::regtype) AS bool
                      FROM pg_operator WHERE oprnamespace = 'pg_catalog'::regnamespace AND oprkind = 'b'
                     GROUP BY oprname) o,
                   unnest(types) l(t), unnest(types) r(t)
             WHERE NOT EXISTS (SELECT 1 FROM pg_operator p
                                WHERE p.oprnamespace = 'pg_catalog'::regnamespace AND p.oprname = o.name
                                  AND p.oprleft = l.t AND p.oprright = r.t)
        LOOP
            BEGIN
                EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %I.%I)',
                               s, rec.name, rec.l, rec.r, s, CASE WHEN rec.bool THEN 'trap_bool' ELSE 'trap_val' END);
                made := made + 1;
            EXCEPTION WHEN OTHERS THEN skipped := skipped + 1;
            END;
        END LOOP;
        -- Prefix operators likewise.
        FOR rec IN
            SELECT o.name, r.t AS r
              FROM (SELECT DISTINCT oprname AS name FROM pg_operator
                     WHERE oprnamespace = 'pg_catalog'::regnamespace AND oprkind = 'l') o, unnest(types) r(t)
             WHERE NOT EXISTS (SELECT 1 FROM pg_operator p
                                WHERE p.oprnamespace = 'pg_catalog'::regnamespace AND p.oprname = o.name
                                  AND p.oprkind = 'l' AND p.oprright = r.t)
        LOOP
            BEGIN
                EXECUTE format('CREATE OPERATOR %I.%s (RIGHTARG = %s, FUNCTION = %I.trap_prefix)', s, rec.name, rec.r, s);
                made := made + 1;
            EXCEPTION WHEN OTHERS THEN skipped := skipped + 1;
            END;
        END LOOP;
        -- Functions with the names vibe_ft calls: each pg_catalog signature with one
        -- argument swapped for each type, where pg_catalog has no such signature;
        -- and all-text variants of each arity (unknown literals prefer text).
        FOR rec IN
            WITH sigs AS (
                SELECT p.proname, p.prorettype::regtype AS ret, p.proargtypes::oid[] AS args
                  FROM pg_proc p
                 WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
                   AND p.proname = ANY (ARRAY[{names}])
                   AND p.pronargs BETWEEN 1 AND 4
            ), candidates AS (
                SELECT s.proname, s.ret,
                       (s.args[:i - 1] || t::oid || s.args[i + 1:])::oid[] AS args
                  FROM sigs s, generate_subscripts(s.args, 1) i, unnest(types) t
                UNION
                SELECT s.proname, 'text'::regtype, array_fill('text'::regtype::oid, ARRAY[n])
                  FROM (SELECT DISTINCT proname FROM sigs) s, generate_series(1, 5) n
            )
            SELECT DISTINCT c.proname, c.ret, c.args FROM candidates c
             WHERE NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace
                                  AND p.proname = c.proname AND p.proargtypes::oid[] = c.args)
               AND NOT EXISTS (SELECT 1 FROM pg_type t WHERE t.oid = ANY (c.args || c.ret::oid) AND t.typtype = 'p')
        LOOP
            sig := (SELECT string_agg(a::regtype::text, ', ') FROM unnest(rec.args) a);
            BEGIN
                EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE sql AS %L',
                               s, rec.proname, sig, rec.ret,
                               format('SELECT NULL::%s FROM (SELECT hostile.fire(%L)) f', rec.ret, s || ': function ' || rec.proname || '(' || sig || ')'));
                made := made + 1;
            EXCEPTION WHEN OTHERS THEN skipped := skipped + 1;
            END;
        END LOOP;
    END LOOP;
    RAISE NOTICE 'planted % traps (% signatures could not be created)', made, skipped;
END $plant$;
RESET ROLE;
"""

# Views with vibe_ft's relation names and columns, firing when read or written.
RELATIONS = """
SELECT c.relname, c.relnamespace::regnamespace::text,
       string_agg(format('NULL::%s AS %I', format_type(a.atttypid, a.atttypmod), a.attname), ', ' ORDER BY a.attnum)
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'vibe_ft'
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'v')
 GROUP BY c.relname, c.relnamespace ORDER BY 1
"""

VIEW = r"""
CREATE VIEW {schema}.{name} AS SELECT {columns} WHERE hostile.fire('{schema}: relation {name}') IS NULL;
CREATE FUNCTION {schema}.{name}_write() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM hostile.fire('{schema}: write to relation {name}'); RETURN NULL; END $f$;
CREATE TRIGGER {name}_write INSTEAD OF INSERT OR UPDATE OR DELETE ON {schema}.{name}
    FOR EACH ROW EXECUTE FUNCTION {schema}.{name}_write();
"""


def plant(c, db="postgres"):
    """Plant every trap in `db` (vibe_ft installed there). Returns the NOTICE with the count."""
    c.sql(SETUP.format(hostile=HOSTILE), db)
    names = ", ".join("'%s'" % n for n in called_function_names())
    types = ", ".join("'%s'" % t for t in TYPES)
    out = c.sql_with_notices(PLANT.format(hostile=HOSTILE, names=names, types=types), db)
    views = [PIN, f"SET ROLE {HOSTILE};"]
    for name, home, columns in c.sql(PIN + RELATIONS, db):
        for schema in ("hostile", "public"):
            if schema != home:  # public.finetuning_job_stats is vibe_ft's own
                views.append(VIEW.format(schema=schema, name=name, columns=columns))
    views.append("RESET ROLE;")
    c.sql("\n".join(views), db)
    return out


def counts(c, db="postgres"):
    """How many operators and functions the hostile role owns."""
    return c.sql(PIN + f"""SELECT (SELECT count(*) FROM pg_operator WHERE oprowner = '{HOSTILE}'::regrole),
                            (SELECT count(*) FROM pg_proc WHERE proowner = '{HOSTILE}'::regrole),
                            (SELECT count(*) FROM pg_class WHERE relowner = '{HOSTILE}'::regrole AND relkind = 'v')""", db)[0]


def fired(c, db="postgres"):
    """(times any trap ran, what they were, whether the hostile role became a superuser)."""
    n = c.one(PIN + "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM hostile.fired_seq", db)
    what = [r[0] for r in c.sql(PIN + "SELECT DISTINCT what FROM hostile.fired ORDER BY 1", db)]
    su = c.one(PIN + f"SELECT rolsuper FROM pg_roles WHERE rolname = '{HOSTILE}'", db)
    return int(n), what, su == "t"
