"""End-to-end: which model to serve. A job runs to a model through the worker
and the simulator; its model is tested against the base model on live ratings
(conversations through choose_model, answers recorded by the backend, rated
by users), the worker evaluates the experiment by itself; and the report is
opened in a real browser (Debian's chromium), screenshotted, and every chart
checked to have rendered."""

import json
import time
import shutil
import struct
import zlib

from harness import *  # noqa: F401,F403
from test_jobs import runner_cluster, wait_final

BASE = "gpt-4o-mini-2024-07-18"


def conversations(c, ds, rnd, users, finetuned_pct, base_pct):
    """One round: every user asks once through choose_model; the backend
    records the answer with the model that produced it; the user rates it
    (positive with a percentage per kind of model, drawn from a hash)."""
    c.sql(f"""
        SELECT count(*) FROM generate_series(1, {users}) u
         CROSS JOIN LATERAL choose_model('user-' || u, p_dataset_id => '{ds}') m
         CROSS JOIN LATERAL record_answer(format('r{rnd}-%s', u), 'user-' || u,
                  '[{{"role":"user","content":"How do I keep going?"}}]', 'One step at a time.', m.model, m.provider) r;
        SELECT count(*) FROM vibe_ft.feedback f
         CROSS JOIN LATERAL submit_feedback(f.answer_id,
                  vibe_ft.bucket('rating', f.answer_id) < 100 * CASE WHEN f.model LIKE 'ft:%' THEN {finetuned_pct} ELSE {base_pct} END,
                  NULL, f.user_id) s
         WHERE f.answer_id LIKE 'r{rnd}-%';""")


def png_pixels(path):
    """(width, height, rows of RGBA bytes) of an 8-bit RGB/RGBA PNG, decoded
    with the standard library (filters 0-4)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            bpp = 4 if color == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            cc = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else cc)) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(line))
        prev = line
    return width, height, bpp, rows


# Injected into a copy of the page for the browser check only (the report
# itself has no script): where each chart is, and how many of its marks have
# a drawn size.
PROBE = """<script>
window.addEventListener('load', () => {
  const out = [...document.querySelectorAll('svg.chart')].map(svg => {
    const r = svg.getBoundingClientRect();
    const marks = [...svg.querySelectorAll('.mark')].filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
    return {chart: svg.dataset.chart, empty: svg.dataset.empty || null, marks: marks.length,
            x: r.left + window.scrollX, y: r.top + window.scrollY, w: r.width, h: r.height};
  });
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium(*args):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is not installed (scripts/setup.sh installs Debian's)"
    p = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--force-device-scale-factor=1", "--window-size=1000,4000", *args],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def test_a_model_is_promoted_on_ratings_and_the_report_renders_in_a_browser(work):
    sim = Sim()
    # The worker evaluates experiments every minute (the shortest setting).
    c = runner_cluster(work, "experiments", sim, conf=["vibe_ft.experiment_interval = 1"])
    try:
        ds = install(c)
        c.sql(f"UPDATE vibe_ft.datasets SET experiment_min_rated = 40, experiment_min_phase_hours = 0 WHERE id = '{ds}'")
        job = c.one(f"SELECT create_finetuning_job('{ds}', '{BASE}', '{{\"n_epochs\": 2}}', 'coach')")
        assert wait_final(c, job) == "succeeded"
        model = c.one(f"SELECT fine_tuned_model FROM vibe_ft.jobs WHERE id = '{job}'")
        # Its model is now a candidate against the base model, at 10% of users.
        exp = c.sql(f"SELECT id, state, share::text, control_job_id IS NULL FROM vibe_ft.experiments WHERE candidate_job_id = '{job}'")
        assert len(exp) == 1 and exp[0][1:] == ["running", "10", "t"], exp
        eid = exp[0][0]
        arms = dict(c.sql("SELECT arm, count(*) FROM generate_series(1, 1000) u "
                          f"CROSS JOIN LATERAL choose_model('user-' || u, p_dataset_id => '{ds}') GROUP BY arm"))
        assert set(arms) == {"candidate", "control"} and 60 <= int(arms["candidate"]) <= 140, arms
        # The fine-tuned model is liked more: the worker ramps it by itself...
        conversations(c, ds, 1, 600, 90, 40)
        wait_for(f"the worker to ramp experiment {eid}", lambda: c.one(
            f"SELECT share::text FROM vibe_ft.experiments WHERE id = {eid}") == "25", timeout=100, every=1)
        # ... and evaluate_experiments() does the same from SQL (pg_cron, by hand).
        conversations(c, ds, 2, 600, 90, 40)
        assert c.sql("SELECT decision, state, share FROM vibe_ft.evaluate_experiments()") == [["ramp", "running", "50"]]
        conversations(c, ds, 3, 600, 90, 40)
        assert c.sql("SELECT decision, state FROM vibe_ft.evaluate_experiments()") == [["promote", "promoted"]]
        kinds = [r[0] for r in c.sql(f"SELECT kind FROM vibe_ft.experiment_events WHERE experiment_id = {eid} ORDER BY id")]
        assert kinds == ["started", "ramp", "ramp", "promote"], kinds
        assert c.one(f"SELECT model FROM choose_model('someone', p_dataset_id => '{ds}')") == model
        res = c.sql(f"SELECT state, lift_low_95 > 0, p_better > 0.99 FROM vibe_ft.experiment_results WHERE experiment_id = {eid}")
        assert res == [["promoted", "t", "t"]], res

        # The report: one page, no scripts, no external assets.
        # (as the README says: psql, unaligned, to a file)
        p = subprocess.run(c.psql_cmd(), input=f"SELECT vibe_ft.report_html('{ds}')", capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        html = p.stdout
        assert html.startswith("<!DOCTYPE html>") and "<script" not in html.lower()
        assert "http://" not in html and "https://" not in html and "src=" not in html
        assert model in html
        out = os.path.join(work, "report")
        os.makedirs(out, exist_ok=True)
        page = os.path.join(out, "report.html")
        with open(page, "w") as f:
            f.write(html)
        with open(os.path.join(out, "probe.html"), "w") as f:
            f.write(html.replace("</body>", PROBE + "</body>"))
        # Where each chart is, and how many of its marks were drawn.
        dom = chromium("--virtual-time-budget=5000", "--dump-dom", "file://" + os.path.join(out, "probe.html"))
        probe = json.loads(dom.split('<pre id="probe">', 1)[1].split("</pre>", 1)[0].replace("&quot;", '"'))
        charts = {p["chart"]: p for p in probe}
        assert {"jobs", "loss-1", "ratings", "experiments"} <= set(charts), charts
        for name, p in charts.items():
            assert not p["empty"] and p["marks"] > 0 and p["w"] > 100 and p["h"] > 50, p
        # The screenshot of the page itself: every chart's area has drawn pixels
        # in colour (the marks), not only the background, grid and text.
        png = os.path.join(out, "report.png")
        chromium(f"--screenshot={png}", "file://" + page)
        width, height, bpp, rows = png_pixels(png)
        for name, p in charts.items():
            x0, y0 = int(p["x"]), int(p["y"])
            x1, y1 = min(width, int(p["x"] + p["w"])), min(height, int(p["y"] + p["h"]))
            assert y1 > y0 + 10, (name, p, height)
            coloured = 0
            for y in range(y0, y1, 2):
                row = rows[y]
                for x in range(x0, x1, 2):
                    r, g, b = row[x * bpp], row[x * bpp + 1], row[x * bpp + 2]
                    if max(r, g, b) - min(r, g, b) > 60:
                        coloured += 1
            assert coloured > 30, (name, coloured, p)
        print(f"    report: {page} and {png}")
    finally:
        c.stop()
        sim.stop()


def test_a_simulated_population_through_the_database(work):
    """The rule's figures are simulated in `cargo test` (200 experiments per
    scenario, 28-day limits). This runs a smaller population through the
    database itself, in real time scaled 1,800x (a simulated hour is two
    seconds; the policy's hours and days are scaled alike): every
    conversation through choose_model, recorded with record_answer, rated
    with submit_feedback up to a day (48 s) later, evaluate_experiments every
    simulated hour. 24 datasets, each its own experiment: 8 A/A (60% vs 60%),
    8 better (80% vs 60%), 8 worse (40% vs 60%); users differ by up to ±10
    points; ratings are drawn from hashes, so runs repeat."""
    SEC = 2.0                       # real seconds per simulated hour
    HOURS = 48                      # the experiments' limit
    PER_HOUR = 200                  # conversations per dataset per hour
    c = Cluster(work, "simulation", preload="vibe_ft", conf=["vibe_ft.enabled = off", "vibe_ft.experiment_interval = 0"])
    try:
        c.sql("CREATE EXTENSION vibe_ft")
        c.sql(f"""
            CREATE SCHEMA sim;
            CREATE TABLE sim.datasets (base text PRIMARY KEY, scenario text, cand_pct int, ctrl_pct int);
            INSERT INTO sim.datasets
            SELECT format('sim-%s-%s', s.name, i), s.name, s.cand, 60
              FROM (VALUES ('aa', 60), ('better', 80), ('worse', 40)) s(name, cand), generate_series(1, 8) i;
            CREATE TABLE sim.pending (answer_id text, user_id text, due int, positive boolean);
            INSERT INTO vibe_ft.datasets (name, base_model, experiment_min_rated, experiment_min_phase_hours, experiment_max_days)
            SELECT base, base, 30, 6 * {SEC} / 3600.0, {HOURS} * {SEC} / 86400.0 FROM sim.datasets;
            CREATE TABLE sim.jobs AS
            SELECT d.base_model, create_finetuning_job(d.id, d.base_model) AS id FROM vibe_ft.datasets d;
            SELECT update_finetuning_job_status(j.id, 'ftjob-' || j.base_model, 'succeeded', 'ft:' || j.base_model || ':cand')
              FROM sim.jobs j;""")
        assert c.one("SELECT count(*) FROM vibe_ft.experiments WHERE state = 'running'") == "24"
        exp_of = dict(c.sql("SELECT x.id, x.base_model FROM vibe_ft.experiments x"))
        decided = {}
        t0 = time.time()
        for h in range(HOURS + 2):
            c.sql(f"""
                WITH conv AS (
                    SELECT d.base, d.cand_pct, d.ctrl_pct, format('%s-{h}-%s', d.base, n) AS answer_id,
                           format('u%s-%s', vibe_ft.bucket('pick', format('%s-{h}-%s', d.base, n)) % 400, d.base) AS user_id
                      FROM sim.datasets d, generate_series(1, {PER_HOUR}) n),
                served AS (
                    SELECT cv.*, m.model
                      FROM conv cv
                     CROSS JOIN LATERAL choose_model(cv.user_id, cv.base) m
                     CROSS JOIN LATERAL record_answer(cv.answer_id, cv.user_id, '[{{"role":"user","content":"q"}}]', 'a',
                                                      m.model, m.provider) r)
                INSERT INTO sim.pending
                SELECT s.answer_id, s.user_id, {h} + vibe_ft.bucket('delay', s.answer_id) % 25,
                       vibe_ft.bucket('positive', s.answer_id)
                         < 100 * ((CASE WHEN s.model LIKE 'ft:%' THEN s.cand_pct ELSE s.ctrl_pct END)
                                  + vibe_ft.bucket('user', s.user_id) % 21 - 10)
                  FROM served s WHERE vibe_ft.bucket('rated', s.answer_id) < 3000;
                SELECT count(*) FROM sim.pending p
                 CROSS JOIN LATERAL submit_feedback(p.answer_id, p.positive, NULL, p.user_id) f WHERE p.due = {h};""")
            for eid, decision, state, step in c.sql(
                    "SELECT e.experiment_id, e.decision, e.state, x.step FROM vibe_ft.evaluate_experiments() e "
                    "JOIN vibe_ft.experiments x ON x.id = e.experiment_id WHERE e.decision NOT IN ('wait', 'ramp')"):
                decided[eid] = (decision, state, int(step), h)
            if len(decided) == 24:
                break
            # the next simulated hour begins SEC seconds after this one did
            time.sleep(max(0.0, t0 + (h + 1) * SEC - time.time()))
        rated = dict(c.sql("SELECT x.base_model, coalesce((x.evidence->>'control_rated')::float8 + (x.evidence->>'candidate_rated')::float8, 0)::int "
                           "FROM vibe_ft.experiments x"))
        by = {"aa": [], "better": [], "worse": []}
        for eid, base in exp_of.items():
            scenario = base.split("-")[1]
            by[scenario].append(decided.get(eid, ("none", "running", -1, None)) + (rated[base],))
        for scenario, rows in by.items():
            print(f"    {scenario}: " + ", ".join(f"{d}@{h}h/step{s}/{n} rated" for d, _, s, h, n in rows))
        aa_decided = sum(1 for d, *_ in by["aa"] if d in ("promote", "rollback"))
        assert aa_decided <= 1, by["aa"]
        assert sum(1 for d, *_ in by["better"] if d == "promote") >= 7, by["better"]
        assert sum(1 for d, _, s, *_ in by["worse"] if d == "rollback" and s == 0) >= 7, by["worse"]
        # every decision is an event with its numbers; nothing was decided for a worse model's benefit
        assert c.one("SELECT count(*) FROM vibe_ft.experiment_events WHERE kind IN ('promote', 'rollback') AND NOT evidence ? 'lift'") == "0"
        assert c.one("SELECT count(*) FROM vibe_ft.promotions p JOIN vibe_ft.jobs j ON j.id = p.job_id "
                     "WHERE j.base_model LIKE 'sim-worse-%'") == "0"
    finally:
        c.stop()
