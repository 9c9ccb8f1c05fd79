"""Calls of every function vibe_ft exposes, generated from the catalog: each
argument position NULL, and each position at the edges of its type (empty and
huge strings, extreme numbers, malformed JSON shapes), the others at ordinary
values. A new function is covered the day it is added.

Used by test_security: every call must answer with a documented SQLSTATE
(never XX000, never a crash), and none may fire a planted trap."""

import json

# What vibe_ft answers to a caller's mistake (README, "Errors"). Anything else
# (XX000 above all) is a bug.
DOCUMENTED = {
    "22004",  # a required argument is NULL
    "22023",  # a bad value
    "22003",  # a number out of range
    "42704",  # unknown dataset, job or answer
    "23505",  # a second unfinished job; an answer recorded with other content
    "55000",  # an object not in a state that allows it
    "0A000",  # pg_cron not installed
    "38000",  # the provider refused
    "42501",  # not allowed
    "54000",  # too large
    "25000",  # needs READ COMMITTED
    "42883",  # a redact function that does not exist
    "42804",  # a redact function of the wrong type
}

# Ordinary values by type, and by argument name where the name says more.
BY_NAME = {
    "p_split": "'train'", "p_status": "'running'", "p_provider": "'openai'", "p_method": "'supervised'",
    "p_base_model": "'gpt-4o-2024-08-06'", "p_model": "'gpt-4o-2024-08-06'", "p_schedule": "'0 3 * * 1'",
    "p_kind": "'note'", "p_from": "'pending'", "p_to": "'exporting'", "p_sqlstate": "'XX000'",
    "p_messages": "'[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]'::jsonb",
    "p_input": "'[{\"role\":\"user\",\"content\":\"hi\"}]'::jsonb",
    "p_function": "'public.no_such_function(text)'",
    "p_role": "'postgres'::regrole",
}
BY_TYPE = {
    "text": "'x'", "integer": "1", "bigint": "1", "smallint": "1::smallint", "numeric": "1::numeric",
    "double precision": "1::float8", "boolean": "true", "jsonb": "'{}'::jsonb", "uuid": "{uuid}",
    "timestamp with time zone": "now()", "bytea": "'\\x00'::bytea", "numeric[]": "'{0,2.5,5,7.5,10}'::numeric[]",
    "regrole": "'postgres'::regrole", "uuid[]": "'{}'::uuid[]",
}
DEEP = "[" * 200 + "]" * 200
EDGES = {
    "text": ["''", "'   '", "repeat('x', 300)", "repeat('é', 100000)", "'NaN'", "'{}'"],
    "integer": ["0", "-1", "2147483647", "-2147483648"],
    "bigint": ["0", "-1", "9223372036854775807", "-9223372036854775808"],
    "smallint": ["0::smallint", "32767::smallint", "(-32768)::smallint"],
    "numeric": ["0::numeric", "(-1)::numeric", "1e30::numeric", "(-1e30)::numeric", "'NaN'::numeric",
                "'Infinity'::numeric", "'-Infinity'::numeric", "0.000000001::numeric"],
    "double precision": ["'NaN'::float8", "'Infinity'::float8", "(-1e308)::float8"],
    "boolean": ["false"],
    "jsonb": [f"'{v}'::jsonb" for v in ["null", "[]", "{}", '"s"', "1", "[1]", "[{}]", "[null]",
                                         '{"n_epochs":"auto","batch_size":-1}', '{"n_epochs":1e300}',
                                         '[{"role":"user","content":1}]', '[{"role":"assistant","content":"a","weight":7}]',
                                         DEEP]],
    "uuid": ["'00000000-0000-0000-0000-000000000000'::uuid"],
    "timestamp with time zone": ["'infinity'::timestamptz", "'-infinity'::timestamptz", "'4713-01-01 BC'::timestamptz"],
    "bytea": ["''::bytea", "decode(repeat('ff', 100000), 'hex')"],
    "numeric[]": ["'{}'::numeric[]", "'{NULL,1,2,3,4}'::numeric[]", "'{1,2}'::numeric[]",
                  "'{NaN,1,2,3,4}'::numeric[]", "'{-1,2,3,4,5,6}'::numeric[]"],
    "regrole": [],
    "uuid[]": ["ARRAY[NULL]::uuid[]", "ARRAY[gen_random_uuid()]"],
}

CATALOG = """
SELECT n.nspname, p.proname, p.prokind,
       coalesce(array_to_json(p.proargnames), '[]'),
       coalesce((SELECT json_agg(format_type(t, NULL) ORDER BY i)
                   FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, i)), '[]')
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'vibe_ft'
 WHERE p.prorettype <> 'trigger'::regtype
 ORDER BY 1, 2
"""


def functions(c, db="postgres"):
    """[(schema, name, kind, [(arg name, arg type)])] of every vibe_ft function and procedure."""
    out = []
    for schema, name, kind, names, types in c.sql(CATALOG, db):
        names, types = json.loads(names), json.loads(types)
        out.append((schema, name, kind, list(zip(names, types))))
    return out


def ordinary(arg, typ, ids):
    v = BY_NAME.get(arg) if arg in BY_NAME and typ in ("text", "jsonb", "regrole") else None
    if v is None:
        v = BY_TYPE.get(typ)
    if v is None:
        raise AssertionError(f"no ordinary value for an argument of type {typ}: add one to calls.py")
    if typ == "uuid":
        v = ids.get(arg, "gen_random_uuid()")
        v = f"'{v}'::uuid" if v != "gen_random_uuid()" else v
    return v


def calls(funcs, ids):
    """(function, SQL) for every generated call. `ids` maps argument names to
    real ids (a dataset, a job) so that calls get past the first lookup."""
    out = []
    for schema, name, kind, args in funcs:
        target = f"{schema}.{name}"
        base = [ordinary(a, t, ids) for a, t in args]
        variants = [base] if not args else []
        for i, (a, t) in enumerate(args):
            variants.append(base[:i] + [f"NULL::{t}"] + base[i + 1:])
            for edge in EDGES.get(t, []):
                variants.append(base[:i] + [edge] + base[i + 1:])
        for v in variants:
            argl = ", ".join(v)
            sql = f"CALL {target}({argl})" if kind == "p" else f"SELECT * FROM {target}({argl})"
            out.append((target, sql))
    return out


def run(c, generated, db="postgres"):
    """Run every call (functions in one session, each in its own subtransaction;
    procedures alone, as they commit). Returns [(function, sql, sqlstate, message)],
    sqlstate '' for a call that succeeded."""
    funcs = [(f, s) for f, s in generated if not s.startswith("CALL ")]
    procs = [(f, s) for f, s in generated if s.startswith("CALL ")]
    values = ",\n".join("(%s, %s)" % (quote(f), quote(s)) for f, s in funcs)
    script = f"""
CREATE TEMP TABLE generated_calls (n serial, fn text, sql text, code text, message text);
INSERT INTO generated_calls (fn, sql) VALUES {values};
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM generated_calls ORDER BY n LOOP
        BEGIN
            EXECUTE r.sql;
            UPDATE generated_calls SET code = '' WHERE n = r.n;
        EXCEPTION WHEN OTHERS THEN
            UPDATE generated_calls SET code = SQLSTATE, message = left(SQLERRM, 300) WHERE n = r.n;
        END;
    END LOOP;
END $$;
SELECT fn, sql, code, coalesce(message, '') FROM generated_calls ORDER BY n;
"""
    rows = c.sql(script, db)
    out = [(r[0], r[1], r[2], "|".join(r[3:])) for r in rows]
    for f, s in procs:
        try:
            c.sql("\\set VERBOSITY verbose\n" + s, db)
            out.append((f, s, "", ""))
        except Exception as e:  # SqlError: psql prints "ERROR:  ..." and, with VERBOSITY, the code
            msg = str(e)
            out.append((f, s, sqlstate_of(msg), msg))
    return out


def sqlstate_of(psql_error):
    # psql -v VERBOSITY=verbose prints "ERROR:  22023: message"
    for line in psql_error.splitlines():
        if line.startswith("ERROR:"):
            rest = line[len("ERROR:"):].strip()
            code = rest.split(":", 1)[0]
            if len(code) == 5:
                return code
    return "?"


def quote(s):
    return "'" + s.replace("'", "''") + "'"
