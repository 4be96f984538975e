"""`sluice vectors query` against gensim 4.4's own answers (../shared/golden/gensim), with the
tolerances of ../shared/specs/word-vectors.md §3: cosine-type scores within 2e-6, cosmul
within 2e-6 × max(1, |g|), rankings equal except for items whose gensim scores lie within
4e-6, loads, raw vectors, norms and unit vectors bit for bit."""
import base64
import collections
import hashlib
import json
import struct
import subprocess

import pytest

from conftest import SHARED, needs_shared

GOLDEN = SHARED / "golden/gensim"
TOLERANCE = 2e-6
NEAR_TIE = 4e-6


def ask(sluice, vectors, queries, fmt=None, limit=None, extra=()):
    """Runs one `sluice vectors query` process for `queries`; returns the answers by id."""
    command = [sluice, "vectors", "query", str(vectors), *extra]
    if fmt:
        command += ["--format", fmt]
    if limit:
        command += ["--limit", str(limit)]
    stdin = "".join(json.dumps({"id": q["id"], "op": q["op"], "args": q["args"]}) + "\n" for q in queries)
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=True)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["id"] for a in answers] == [q["id"] for q in queries], "one answer per query, in order"
    return {a["id"]: a for a in answers}


def check_ranking(golden, answer, tolerance):
    """Same keys in the same order, except near-ties (within 4e-6 in gensim's scores) may swap
    and the last item may be a runner-up within 4e-6; every score within `tolerance`."""
    expected = [tuple(item) for item in golden["result"]]
    gensim_scores = dict(expected + [tuple(item) for item in golden.get("next", [])])
    got = [tuple(item) for item in answer["result"]]
    assert len(got) == len(expected), golden["id"]
    for position, (key, score) in enumerate(got):
        assert key in gensim_scores, f"{golden['id']}: {key} is not among gensim's top {len(gensim_scores)}"
        assert abs(score - gensim_scores[key]) <= tolerance(gensim_scores[key]), (golden["id"], key, score)
        want = expected[position][0]
        if key != want:
            gap = abs(gensim_scores[key] - gensim_scores[want])
            assert gap <= NEAR_TIE, f"{golden['id']}: {key} at {position}, gensim has {want} ({gap:.2e} apart)"
    return max((abs(s - gensim_scores[k]) for k, s in got), default=0.0)


def check(golden, answer):
    """Asserts one answer; returns its largest score deviation."""
    gid = golden["id"]
    if "error" in golden:
        assert answer.get("error") == golden["error"], f"{gid}: {answer}"
        return 0.0
    assert "result" in answer, f"{gid}: {answer}"
    op, want, got = golden["op"], golden["result"], answer["result"]
    if op == "load_summary":
        for field in ("count", "dim", "keys_sha256", "vectors_sha256", "first_keys", "last_keys"):
            assert got[field] == want[field], (gid, field)
        return 0.0
    if op == "most_similar":
        return check_ranking(golden, answer, lambda g: TOLERANCE)
    if op == "most_similar_cosmul":
        return check_ranking(golden, answer, lambda g: TOLERANCE * max(1.0, abs(g)))
    if op in ("similarity", "distance", "n_similarity"):
        assert abs(got - want) <= TOLERANCE, (gid, got, want)
        return abs(got - want)
    if op == "doesnt_match":
        assert got == want, gid
        gensim = dict(map(tuple, golden["ranking"]))
        deviations = [abs(d - gensim[k]) for k, d in answer["ranking"]]
        assert sorted(gensim) == sorted(k for k, _ in answer["ranking"]) and max(deviations) <= TOLERANCE, gid
        return max(deviations)
    if op in ("closer_than", "rank"):
        boundary = {item[0] if isinstance(item, list) else item for item in golden.get("boundary", [])}
        if op == "closer_than":
            assert set(got) ^ set(want) <= boundary, (gid, set(got) ^ set(want))
            assert [k for k in got if k in want] == [k for k in want if k in got], f"{gid}: index order"
        else:
            assert abs(got - want) <= len(boundary), (gid, got, want)
        return 0.0
    if op in ("contains", "vector", "unit_vector", "norm"):
        assert got == want, f"{gid}: not bit-identical"
        return 0.0
    raise AssertionError(f"{gid}: op {op} has no check")


@needs_shared
def test_every_gensim_query_is_answered_within_tolerance(sluice):
    queries = [json.loads(line) for line in (GOLDEN / "queries.jsonl").read_text().splitlines()]
    assert len(queries) == 91
    groups = collections.defaultdict(list)
    for query in queries:
        limit = query["args"].get("limit") if query["op"] == "load_summary" else None
        groups[(query["vectors"], query["format"], limit)].append(query)
    worst = collections.Counter()
    checked = 0
    for (vectors, fmt, limit), group in sorted(groups.items(), key=str):
        answers = ask(sluice, GOLDEN / vectors, group, fmt=fmt, limit=limit)
        for query in group:
            deviation = check(query, answers[query["id"]])
            worst[query["op"]] = max(worst[query["op"]], deviation)
            checked += 1
    assert checked == 91
    print("largest score deviation from gensim by op:", dict(worst))


@needs_shared
def test_detection_and_every_format_answer_alike(sluice, tmp_path):
    """The glove set converted to every format, with the format detected from content, answers
    the glove queries the same; the notebook's queries answer as gensim did."""
    source = GOLDEN / "glove-6b-50d-top4000.txt"
    queries = [json.loads(line) for line in (GOLDEN / "queries.jsonl").read_text().splitlines()]
    glove = [q for q in queries if q["id"].startswith("glove/") and q["op"] != "load_summary"]
    for fmt, name in (("word2vec-binary", "g.bin"), ("word2vec-text", "g.w2v.txt"), ("safetensors", "g.safetensors")):
        out = tmp_path / name
        subprocess.run([sluice, "vectors", "convert", str(source), "--to", fmt, str(out)], check=True, capture_output=True)
        answers = ask(sluice, out, glove)
        for query in glove:
            check(query, answers[query["id"]])


def loader_summary(result):
    keys = "\n".join(result["keys"]).encode()
    matrix = b"".join(struct.pack("<I", int(bits, 16)) for bits in result["bits"])
    return hashlib.sha256(keys).hexdigest(), hashlib.sha256(matrix).hexdigest()


@needs_shared
def test_loader_goldens_through_the_command_line(sluice, tmp_path):
    """Each hand-made file of loader.jsonl: loaded as gensim loads it, or refused with one line
    that names the file (exit 1) where gensim raised."""
    for line in (GOLDEN / "loader.jsonl").read_text().splitlines():
        record = json.loads(line)
        path = tmp_path / record["id"].replace("/", "_")
        path.write_bytes(base64.b64decode(record["file_b64"]))
        command = [sluice, "vectors", "query", str(path), "--format", record["format"],
                   "--unicode-errors", record["args"]["unicode_errors"]]
        if record["args"]["limit"]:
            command += ["--limit", str(record["args"]["limit"])]
        query = json.dumps({"id": 0, "op": "load_summary", "args": {"limit": record["args"]["limit"]}}) + "\n"
        done = subprocess.run(command, input=query, capture_output=True, text=True)
        if record["expect"] == "error" or (record["expect"] == "match-or-error" and done.returncode != 0):
            assert done.returncode == 1, record["id"]
            assert len(done.stderr.strip().splitlines()) == 1 and str(path) in done.stderr, done.stderr
            continue
        assert done.returncode == 0, (record["id"], done.stderr)
        got = json.loads(done.stdout)["result"]
        candidates = [r for r in (record.get("result"), record.get("alt_result")) if r and None not in r["keys"]]
        assert any((got["keys_sha256"], got["vectors_sha256"]) == loader_summary(r) for r in candidates), record["id"]


def test_query_protocol_errors_are_answers_not_crashes(sluice, tmp_path):
    """Malformed lines, unknown ops and bad arguments each get an error answer in order; the
    process goes on and exits 0."""
    vectors = tmp_path / "v.txt"
    vectors.write_text("3 2\nking 1 0\nqueen 0.9 0.1\nman 0 1\n")
    stdin = "\n".join([
        "not json",
        json.dumps({"id": 1, "op": "nope"}),
        json.dumps({"id": 2, "op": "similarity", "args": {"w1": 5, "w2": "man"}}),
        json.dumps({"id": 3, "op": "most_similar", "args": {"positive": ["king"], "topn": 1}}),
        json.dumps({"id": 4, "op": "most_similar", "args": {}}),
        json.dumps({"id": 5, "op": "vector", "args": {"key": "xyzzy"}}),
        json.dumps({"id": 6, "op": "most_similar", "args": {"positive": [["king", 2.0], [0.5, 0.5]], "topn": 2}}),
    ]) + "\n"
    done = subprocess.run([sluice, "vectors", "query", str(vectors)], input=stdin, capture_output=True, text=True,
                          check=True)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == 7
    assert answers[0]["id"] is None and "line 1" in answers[0]["error"]["message"]
    assert answers[1]["error"]["type"] == "ValueError" and "unknown op" in answers[1]["error"]["message"]
    assert answers[2]["error"]["type"] == "TypeError"
    assert answers[3]["result"][0][0] == "queen"
    assert answers[4]["error"] == {"type": "ValueError", "message": "cannot compute mean with no input"}
    assert answers[5]["error"] == {"type": "KeyError", "message": "Key 'xyzzy' not present"}
    assert [key for key, _ in answers[6]["result"]] == ["queen", "man"]


def test_people_commands(sluice, tmp_path):
    """similar / similarity / info / convert print tables or JSON that agree with the queries."""
    vectors = tmp_path / "v.txt"
    vectors.write_text("king 1 0.1\nqueen 0.9 0.2\nman 0.1 1\nwoman 0.2 0.95\n")
    similar = subprocess.run([sluice, "vectors", "similar", str(vectors), "king", "woman", "--minus", "man",
                              "--topn", "1", "--json"], capture_output=True, text=True, check=True)
    assert json.loads(similar.stdout)[0][0] == "queen"
    table = subprocess.run([sluice, "vectors", "similar", str(vectors), "king"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert table[1].split() == ["#", "word", "score"] and table[2].split()[1] == "queen"
    info = json.loads(subprocess.run([sluice, "vectors", "info", str(vectors), "--json"], capture_output=True,
                                     text=True, check=True).stdout)
    assert (info["format"], info["count"], info["dim"]) == ("glove", 4, 2)
    missing = subprocess.run([sluice, "vectors", "similarity", str(vectors), "king", "India"], capture_output=True,
                             text=True)
    assert missing.returncode == 1 and "Key 'India' not present" in missing.stderr
    spaced = tmp_path / "spaced.txt"
    spaced.write_bytes(b"1 2\n\x01a\x02 1 2\n")
    converted = subprocess.run([sluice, "vectors", "convert", str(spaced), "--to", "safetensors",
                                str(tmp_path / "s.safetensors")], capture_output=True, text=True, check=True)
    assert "s.vocab.txt" in converted.stdout


def test_query_answers_each_line_as_it_arrives(sluice, tmp_path):
    """A program holding the pipe open gets each answer before it sends the next query."""
    vectors = tmp_path / "v.txt"
    vectors.write_text("3 2\nking 1 0\nqueen 0.9 0.1\nman 0 1\n")
    process = subprocess.Popen([sluice, "vectors", "query", str(vectors)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        for word, nearest in (("king", "queen"), ("man", "queen")):
            process.stdin.write(json.dumps({"id": word, "op": "most_similar", "args": {"positive": [word], "topn": 1}}) + "\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            assert answer["id"] == word and answer["result"][0][0] == nearest
    finally:
        process.stdin.close()
        assert process.wait(timeout=30) == 0
