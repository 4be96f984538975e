"""`sluice config schema` agrees with the decoder: every pipeline validates against it, every
mistake the decoder rejects is rejected by the schema too, except the cross-key rules that JSON
Schema cannot state (listed in the schema's description and in docs/CONFIG.md), which are
checked here to be accepted by the schema and rejected by sluice."""
import json
import subprocess

import jsonschema
import pytest

from conftest import ROOT

REJECTED_BY_BOTH = [
    {"inputs": ["a"], "window": {"strid": 4}, "tokenizer": {"vocab": "v"}},
    {"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"stride": 0}},
    {"inputs": ["a"], "workers": 0},
    {"inputs": ["a"], "workers": 2.5},
    {"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"seed": 18446744073709551616}},
    {"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {}, "embedding": {"dtype": "float64"}},
    {"inputs": ["a"], "ingest": {"invalid_utf8": "replce"}},
    {"inputs": "corpus/"},
    {"inputs": []},
    {"output": "x"},
    {"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"shuffle": "yes"}},
    {"inputs": ["a"], "inptus": []},
    {"inputs": ["a"], "format": 2},
    {"inputs": ["a"], "tokenizer": {"vocab": "v", "special_tokens": {"<|x|>": -1}}},
    {"inputs": ["a"], "tokenizer": {"train": {}}},
    {"inputs": ["a"], "tokenizer": {"train": {"vocab_size": 100}, "special_tokens": {}}},
]

CROSS_KEY_ONLY = [
    {"inputs": ["a"], "tokenizer": {}},
    {"inputs": ["a"], "tokenizer": {"vocab": "v", "train": {"vocab_size": 1000}}},
    {"inputs": ["a"], "tokenizer": {"train": {"vocab_size": 1000}}},
    {"inputs": ["a"], "tokenizer": {"vocab": "v", "document_separator": "<|sep|>"}},
    {"inputs": ["a"], "window": {}},
    {"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"max_length": 8}, "embedding": {"context_length": 4}},
    {"inputs": ["a"], "tokenizer": {"vocab": "v", "special_tokens": {"<|a|>": 1, "<|b|>": 1}, "document_separator": None}},
]


@pytest.fixture(scope="module")
def validator(sluice):
    schema = json.loads(subprocess.run([sluice, "config", "schema"], check=True, capture_output=True, text=True).stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check(sluice, tmp_path, config) -> subprocess.CompletedProcess:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.run([sluice, "config", "check", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("pipeline", sorted((ROOT / "pipelines").glob("*.json")), ids=lambda p: p.name)
def test_pipelines_validate(validator, sluice, pipeline):
    validator.validate(json.loads(pipeline.read_text()))
    assert subprocess.run([sluice, "config", "check", str(pipeline)], capture_output=True).returncode == 0


def test_resolved_config_validates(validator, sluice):
    out = subprocess.run([sluice, "config", "check", str(ROOT / "pipelines/verdict-tokens.json")], capture_output=True, text=True, check=True)
    resolved = json.loads(out.stdout[: out.stdout.rindex("}") + 1])
    validator.validate(resolved)


@pytest.mark.parametrize("config", REJECTED_BY_BOTH, ids=json.dumps)
def test_rejected_by_both(validator, sluice, tmp_path, config):
    assert not validator.is_valid(config)
    result = check(sluice, tmp_path, config)
    assert result.returncode == 1
    assert result.stderr.startswith("sluice: ") and "config.json:" in result.stderr


@pytest.mark.parametrize("config", CROSS_KEY_ONLY, ids=json.dumps)
def test_cross_key_rules(validator, sluice, tmp_path, config):
    assert validator.is_valid(config), "the schema cannot express this rule; docs/CONFIG.md lists it"
    assert check(sluice, tmp_path, config).returncode == 1


def test_every_key_is_documented(validator):
    """docs/CONFIG.md's table and the schema list the same keys."""
    import re

    def keys(properties, prefix=""):
        for name, spec in properties.items():
            yield prefix + name
            for option in spec.get("anyOf", [spec]):
                if "properties" in option:
                    yield from keys(option["properties"], prefix + name + ".")

    documented = set(re.findall(r"^\| `([a-z0-9_.]+)` \|", (ROOT / "docs/CONFIG.md").read_text(), re.M))
    assert documented == set(keys(validator.schema["properties"]))
