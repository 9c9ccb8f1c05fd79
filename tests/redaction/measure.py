"""Figures of a redaction run over the corpus (tests/redaction/corpus.py).

recall      share of values no longer present, whole, after redaction
strict      share of values of which no piece is left (every word of two or
            more letters, every group of two or more digits; titles such as
            "Dr." and degrees such as "B.Sc." are not pieces)
named       share whose replacement names the kind ([phone] for a phone ...)
survivors   share of look-alikes left exactly as they were
clean_fp    share of sentences without personal data in which anything was
            replaced (false positives), and in which a [name] / [address] was

Usage: python measure.py corpus.jsonl redacted.jsonl   (one {"text"} or
string per line, in corpus order) prints the tables as Markdown.
"""

import json
import re
import sys
from collections import defaultdict

PII = ["email", "card", "phone", "iban", "national_id", "ipv4", "ipv6", "name", "address"]
TOKEN = {"email": "[email]", "card": "[card]", "phone": "[phone]", "iban": "[iban]", "national_id": "[national_id]",
         "ipv4": "[ip]", "ipv6": "[ip]", "name": "[name]", "address": "[address]"}
NOT_PIECES = {"dr", "dr.", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "mx.", "miss", "prof.", "prof", "b.sc.", "b.a.",
              "m.sc.", "b.eng.", "mba.", "dipl.-ing.", "ing.", "univ.prof.", "sig.", "sig.ra", "dott.", "sr.", "sra.",
              "dra.", "srta.", "sr", "dr", "md", "phd", "dds", "dvm", "jr.", "sr.", "ii", "iii", "iv", "v", "i",
              "mme", "mlle", "m.", "pani", "pan", "de", "da", "do", "dos", "das", "van", "der", "den", "la", "le", "del",
              "di", "apt.", "suite", "flat", "studio", "unit", "piso", "puerta", "appartamento", "ul.", "aleja",
              "plac", "osiedle", "al.", "pl."}


def pieces(kind, value):
    if kind not in ("name", "address"):
        return [value]
    out = []
    for w in re.split(r"[\s,/]+", value):
        w = w.strip(".()")
        if w.lower() in NOT_PIECES or w.lower() + "." in NOT_PIECES:
            continue
        if re.fullmatch(r"\d+", w) and len(w) < 2:
            continue
        if len(w) >= 2 or re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", w):
            out.append(w)
    return out or [value]


def present(piece, text):
    if re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", piece):
        return piece in text
    return re.search(r"(?<![\w])" + re.escape(piece) + r"(?![\w])", text) is not None


def measure(cases, outputs):
    acc = defaultdict(lambda: defaultdict(int))
    misses = defaultdict(list)
    for c, out in zip(cases, outputs, strict=True):
        k, loc, v = c["kind"], c["locale"], c["value"]
        for key in (("all", k), (loc, k)):
            a = acc[key]
            a["n"] += 1
            if k in PII:
                gone = v not in out
                a["recall"] += gone
                a["strict"] += not any(present(p, out) for p in pieces(k, v))
                a["named"] += TOKEN[k] in out
                if not gone and key[0] == "all" and len(misses[k]) < 5:
                    misses[k].append(v)
            elif k == "survivor":
                ok = out == c["text"]
                a["survivors"] += ok
                if not ok and key[0] == "all" and len(misses[k]) < 5:
                    misses[k].append(f"{c['text']} -> {out}")
            else:
                a["fp"] += out != c["text"]
                a["fp_name"] += "[name]" in out
                a["fp_address"] += "[address]" in out
                if out != c["text"] and key[0] == "all" and len(misses[k]) < 5:
                    misses[k].append(f"{c['text'][:80]} -> {out[:80]}")
    rates = {}
    for (scope, k), a in acc.items():
        r = {m: a[m] / a["n"] for m in ("recall", "strict", "named", "survivors", "fp", "fp_name", "fp_address")
             if m in a}
        r["n"] = a["n"]
        rates.setdefault(scope, {})[k] = r
    return rates, dict(misses)


def markdown(rates, misses):
    lines = ["| kind | n | recall | no piece left | named as its kind | missed, for example |", "|---|---|---|---|---|---|"]
    for k in PII:
        r = rates["all"].get(k)
        if r:
            ex = ", ".join(f"`{m}`" for m in misses.get(k, [])[:2]) or "–"
            lines.append(f"| {k} | {r['n']} | {r['recall']:.3f} | {r['strict']:.3f} | {r['named']:.3f} | {ex} |")
    s, cl = rates["all"]["survivor"], rates["all"]["clean"]
    lines.append(f"| look-alikes that must survive | {s['n']} | {s['survivors']:.3f} survive | | | "
                 + (", ".join(f"`{m}`" for m in misses.get("survivor", [])[:2]) or "–") + " |")
    lines.append(f"| sentences without personal data | {cl['n']} | {1 - cl['fp']:.3f} untouched | | | "
                 + (", ".join(f"`{m}`" for m in misses.get("clean", [])[:2]) or "–") + " |")
    lines += ["", "| locale | names: recall | no piece left | addresses: recall | no piece left | "
              "false positives: [name] | [address] | any |", "|---|---|---|---|---|---|---|---|"]
    for loc, ks in rates.items():
        if loc == "all":
            continue
        n, a = ks["name"], ks["address"]
        lines.append(f"| {loc} | {n['recall']:.3f} | {n['strict']:.3f} | {a['recall']:.3f} | {a['strict']:.3f} | "
                     f"{ks['clean']['fp_name']:.3f} | {ks['clean']['fp_address']:.3f} | {ks['clean']['fp']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = [json.loads(x) for x in f]
    with open(sys.argv[2], encoding="utf-8") as f:
        outs = [json.loads(x) for x in f]
    outs = [o["text"] if isinstance(o, dict) else o for o in outs]
    rates, misses = measure(cases, outs)
    print(markdown(rates, misses))
