"""Projects and the resolution model: where each kind of file is found (chatprobe.paths), the
configuration file (chatprobe.project), precedence project > built-in, one-line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chatprobe import _data
from chatprobe.errors import ConfigError, UnknownNameError
from chatprobe.load.scenario import find_scenario, load_scenario
from chatprobe.paths import (
    builtin,
    cassette_dirs,
    profile_dirs,
    project_root,
    results_dir,
    scenario_dirs,
    suite_files,
    suite_name_for,
)
from chatprobe.profiles import builtin_profiles, emulated_profiles, list_profiles, load_profile
from chatprobe.project import PROJECT_ENV, find_config, find_project, load_project

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ["aimlapi", "apilaplas", "openrouter"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    monkeypatch.delenv("CHATPROBE_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def profile_text(name: str, base_url: str = "http://127.0.0.1:9/v1") -> str:
    return f"""
    name: {name}
    base_url: {base_url}
    api_key_env: {name.upper().replace("-", "_")}_KEY
    custom_endpoint: true
    models:
      m1: {{id: m1}}
    """


# ---------------------------------------------------------------------------- built-in data


def test_builtin_data_comes_from_the_package_or_the_editable_source_tree() -> None:
    for name in _data.FOLDERS:
        assert builtin(name).is_dir(), name
    # this test runs from an editable install: the folders are the repository's own
    assert builtin("specs") == REPO / "specs"
    assert (builtin("loadtests") / "locustfile.py").is_file()
    assert builtin_profiles() == SHIPPED
    with pytest.raises(ValueError, match="unknown data folder"):
        _data.folder("results")


def test_this_repository_is_a_project_whose_folders_are_the_builtin_ones() -> None:
    project = find_project(REPO / "src" / "chatprobe")  # found upwards, like pytest's rootdir
    assert project.config == REPO / "pyproject.toml"
    assert project.providers == tuple(SHIPPED)
    assert project.profiles == (REPO / "specs" / "providers",)
    assert project.suites == (REPO / "suites",)
    assert project.cassettes == REPO / "cassettes"
    assert profile_dirs(project) == (REPO / "specs" / "providers",)  # one folder, not two
    assert cassette_dirs(project) == (REPO / "cassettes",)
    names = [suite_name_for(f) for f in suite_files(project)]
    assert "basic" in names and "derived/aimlapi" in names
    assert len(names) == len(set(names))  # the project's and the built-in suites are one set


# ---------------------------------------------------------------------------- discovery


def test_discovery_walks_up_and_prefers_chatprobe_toml(in_tmp: Path) -> None:
    deep = in_tmp / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(deep) is None
    (deep / "suites").mkdir()
    (deep / "suites" / "ci.yaml").write_text("jobs: [build]\n")
    alone = find_project(deep)
    assert alone.root == deep and not alone.found  # built-in data only, outputs under here
    assert (alone.suites, alone.profiles, alone.scenarios) == ((), (), ())
    assert alone.results == deep / "results"
    assert builtin("suites") / "basic.yaml" in suite_files(alone)
    assert deep / "suites" / "ci.yaml" not in suite_files(alone)
    write(in_tmp / "pyproject.toml", "[project]\nname = 'x'\n")
    assert find_config(deep) is None  # a pyproject without [tool.chatprobe] is not a project
    write(in_tmp / "pyproject.toml", "[tool.chatprobe]\nproviders = ['aimlapi']\n")
    assert find_config(deep) == in_tmp / "pyproject.toml"
    write(in_tmp / "chatprobe.toml", "providers = ['openrouter']\n")
    assert find_config(deep) == in_tmp / "chatprobe.toml"
    project = find_project(deep)
    assert project.root == in_tmp
    assert project.providers == ("openrouter",)
    assert project.results == in_tmp / "results"
    assert project.reports == in_tmp / "reports"


def test_the_environment_names_the_project(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(in_tmp / "elsewhere" / "chatprobe.toml", "models = ['m1']\n")
    monkeypatch.setenv(PROJECT_ENV, str(in_tmp / "elsewhere"))
    assert find_project(in_tmp).models == ("m1",)
    monkeypatch.setenv(PROJECT_ENV, str(in_tmp / "nowhere"))
    with pytest.raises(ConfigError, match="no such file or folder"):
        find_project(in_tmp)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("chatprobe.toml", "providers = ['a']\n[timeouts]\nidle = 'soon'\n",
         "chatprobe.toml:3: timeouts.idle: "),
        ("chatprobe.toml", "providers = 'aimlapi'\n",
         "chatprobe.toml:1: providers: 'aimlapi' is not of type 'array'"),
        ("chatprobe.toml", "[paths]\nresults = 'r'\nsuites = 'x'\n",
         "chatprobe.toml:3: paths.suites: 'x' is not of type 'array'"),
        ("chatprobe.toml", "[paths]\nsuites = ['missing']\n",
         "chatprobe.toml:2: paths.suites[0]: no such file or folder"),
        ("chatprobe.toml", "[thresholds]\nmax_error_rate = 5\n",
         "chatprobe.toml:2: thresholds.max_error_rate: 5 is greater than the maximum of 1"),
        ("chatprobe.toml", "providers = [\n", "chatprobe.toml:1: invalid TOML"),
        ("pyproject.toml", "[project]\nname='x'\n\n[tool.chatprobe]\nbuiltin_suites = 'yes'\n",
         "pyproject.toml:5: builtin_suites: 'yes' is not of type 'boolean'"),
        ("pyproject.toml", "[tool.chatprobe.slo]\nttft = 3\n",
         "pyproject.toml:2: slo.ttft: unexpected property 'ttft'"),
    ],
)  # fmt: skip
def test_a_bad_configuration_is_one_line_with_file_line_and_field(
    in_tmp: Path, name: str, text: str, message: str
) -> None:
    write(in_tmp / name, text)
    with pytest.raises(ConfigError) as caught:
        find_project(in_tmp)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------- resolution


def test_project_profiles_add_to_and_override_the_builtin_ones(in_tmp: Path) -> None:
    write(in_tmp / "chatprobe.toml", "providers = ['mine']\n")
    write(in_tmp / "profiles" / "mine.yaml", profile_text("mine"))
    write(in_tmp / "profiles" / "openrouter.yaml", profile_text("openrouter", "http://x:1/v1"))
    assert profile_dirs()[0] == in_tmp / "profiles"
    assert list_profiles() == ["aimlapi", "apilaplas", "mine", "openrouter"]
    assert load_profile("openrouter").base_url == "http://x:1/v1"  # project > built-in
    assert load_profile("aimlapi").source.startswith(str(builtin("specs")))
    assert builtin_profiles() == SHIPPED  # the shipped list does not change
    assert emulated_profiles() == ["aimlapi", "apilaplas"]  # real endpoints are never emulated
    with pytest.raises(UnknownNameError, match="known: aimlapi, apilaplas, mine, openrouter"):
        load_profile("nope")


def test_project_scenarios_override_by_name(in_tmp: Path) -> None:
    write(in_tmp / "chatprobe.toml", "[slo]\nttft_ms = 750\n")
    assert find_scenario("smoke").parent == builtin("loadtests") / "scenarios"
    write(
        in_tmp / "scenarios" / "smoke.yaml",
        """
        targets: [{provider: aimlapi, model: gemini-2.0-flash-exp}]
        prompts: {text: [hi]}
        duration: 2s
        """,
    )
    assert scenario_dirs()[0] == in_tmp / "scenarios"
    scenario = load_scenario("smoke")
    assert scenario.duration_s == 2
    assert scenario.slo == {"ttft_ms": 750.0}  # a scenario without slo takes the project's
    assert load_scenario("compare").slo["ttft_ms"] == 400  # its own slo wins


def test_suites_project_first_then_builtin_unless_overridden_or_off(in_tmp: Path) -> None:
    write(in_tmp / "chatprobe.toml", "")
    mine = write(in_tmp / "suites" / "basic.yaml", "cases: [{name: a}]\n")
    extra = write(in_tmp / "suites" / "extra.yaml", "cases: [{name: b}]\n")
    files = suite_files()
    assert files[:2] == [mine, extra]  # the project's basic replaces the built-in one
    assert builtin("suites") / "basic.yaml" not in files
    assert builtin("suites") / "streaming.yaml" in files
    assert builtin("suites") / "derived" / "aimlapi.yaml" in files
    write(in_tmp / "chatprobe.toml", "builtin_suites = false\n")
    assert suite_files(load_project(in_tmp / "chatprobe.toml")) == [mine, extra]


def test_outputs_default_under_the_project_root(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(in_tmp / "chatprobe.toml", "[paths]\nresults = 'out/results'\ncassettes = 'rec'\n")
    sub = in_tmp / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert project_root() == in_tmp
    assert results_dir() == in_tmp / "out" / "results"
    assert cassette_dirs()[0] == in_tmp / "rec"
    monkeypatch.setenv("CHATPROBE_RESULTS", str(in_tmp / "env"))
    assert results_dir() == in_tmp / "env"


def test_configured_timeouts_reach_the_contract_client(in_tmp: Path) -> None:
    from chatprobe.pytest_plugin.state import project_timeouts
    from chatprobe.suites.runner import RunConfig

    write(in_tmp / "chatprobe.toml", "[timeouts]\nconnect = '2s'\ntotal = '1m'\n")
    project = find_project(in_tmp)
    timeouts = project_timeouts(project)
    default = RunConfig().timeouts
    assert (timeouts.connect, timeouts.total) == (2.0, 60.0)
    assert (timeouts.first_byte, timeouts.idle) == (default.first_byte, default.idle)


def test_the_error_rate_threshold_is_load_s_default(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import click

    from chatprobe.commands.load import load
    from chatprobe.metrics import DEFAULT_MAX_ERROR_RATE

    option = next(p for p in load.params if p.name == "max_error_rate")
    assert option.callback is not None
    ctx = click.Context(load)
    assert option.callback(ctx, option, None) == DEFAULT_MAX_ERROR_RATE  # no project
    write(in_tmp / "p" / "chatprobe.toml", "[thresholds]\nmax_error_rate = 0.2\n")
    monkeypatch.chdir(in_tmp / "p")
    assert option.callback(ctx, option, None) == 0.2  # the project's
    assert option.callback(ctx, option, "1%") == 0.01  # the option wins
