"""The build stamp that lets the tests reuse the README's build: any change to a source makes
it stale, and a build with warnings or errors is never reused."""

import importlib.util
import json
import shutil

from build_stamp import sources_hash

from .conftest import LESSON_NAMES, ROOT, fresh_build_stamp


def _copy_sources(tmp_path):
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "lessons", tmp_path / "lessons",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return tmp_path


def test_any_change_to_a_source_changes_the_hash(tmp_path):
    root = _copy_sources(tmp_path)
    before = sources_hash(root)
    assert sources_hash(root) == before
    lesson = root / "lessons" / "00_warmup.ipynb"
    lesson.write_bytes(lesson.read_bytes() + b" ")
    assert sources_hash(root) != before
    (root / "lessons" / "99_new.ipynb").write_text("{}")
    assert sources_hash(root) != before


def _fake_build(tmp_path, **stamp):
    build = tmp_path / "_build"
    (build / "html").mkdir(parents=True)
    (build / "html" / "index.html").write_text("<html></html>")
    (build / "jupyter_execute" / "lessons").mkdir(parents=True)
    record = {"sources": sources_hash(), "warnings": 0, "failed": False, "nitpicky": True,
              "execution": "cache", "executed_afresh": LESSON_NAMES, **stamp}
    (build / "build-stamp.json").write_text(json.dumps(record))
    return build


def test_only_a_clean_strict_build_of_the_current_sources_is_reused(tmp_path):
    assert fresh_build_stamp(_fake_build(tmp_path / "ok")) is not None
    bad_stamps = ({"warnings": 1}, {"failed": True}, {"nitpicky": False},
                  {"executed_afresh": []}, {"executed_afresh": LESSON_NAMES[1:]},
                  {"sources": "0" * 64})
    for index, bad in enumerate(bad_stamps):
        assert fresh_build_stamp(_fake_build(tmp_path / str(index), **bad)) is None, bad
    assert fresh_build_stamp(tmp_path / "missing") is None


def _make_pdf_module():
    spec = importlib.util.spec_from_file_location("make_pdf", ROOT / "book" / "make_pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_pdf_rebuilds_by_the_stamp_not_by_file_dates(tmp_path):
    """``book/make_pdf.py`` reuses a finished build of the current sources, whatever the
    lessons' file dates (a checkout touches them), and rebuilds any other."""
    make_pdf = _make_pdf_module()
    assert not make_pdf.build_is_current(tmp_path / "missing")
    assert make_pdf.build_is_current(_fake_build(tmp_path / "current"))
    assert make_pdf.build_is_current(_fake_build(tmp_path / "warned", warnings=3))
    assert not make_pdf.build_is_current(_fake_build(tmp_path / "old", sources="0" * 64))
    assert not make_pdf.build_is_current(_fake_build(tmp_path / "failed", failed=True))
    broken = _fake_build(tmp_path / "broken")
    (broken / "build-stamp.json").write_text("[1,")
    assert not make_pdf.build_is_current(broken)
