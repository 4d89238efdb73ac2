from thinkedit import registry
from thinkedit.config import Settings
from thinkedit.editors import EDITORS


def fake_cached_repo(cache, repo_id: str, marker: str):
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / marker).write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    return snapshot


def test_weights_are_found_in_the_hub_cache_or_a_folder(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    pipeline = fake_cached_repo(tmp_path / "hub", "org/pipeline", "model_index.json")
    model = fake_cached_repo(tmp_path / "hub", "org/model", "config.json")
    assert registry.weights_location("org/pipeline") == str(pipeline)
    assert registry.weights_location("org/model") == str(model)
    assert registry.weights_location("org/absent") is None
    assert registry.weights_location(str(tmp_path)) == str(tmp_path)
    ok, reason = registry.availability("editor", EDITORS["flux-kontext"], Settings(), model="org/pipeline")
    assert ok and str(pipeline) in reason
