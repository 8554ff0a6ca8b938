"""Where a project is: a source tree or an installed package, its conf source a folder or the
archive `kedro package` writes, secrets from a mounted credentials.yml, and schema files found
in the working directory, the conf source or the package."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import yaml

from kedro_stream.config import ConfigError, Project, check_conf_source, read_stream_file
from kedro_stream.config.project import is_archive, read_credentials_file

STREAM = {
    "kafka": {"credentials": "kafka"},
    "streams": {
        "s": {
            "namespace": "ns",
            "group_id": "g",
            "input": {"topics": ["t"], "dataset": "batch"},
            "outputs": {"summary": {"topic": "o"}},
        }
    },
}


def _conf(root: Path) -> Path:
    conf = root / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "local").mkdir()
    (conf / "base" / "stream.yml").write_text(yaml.safe_dump(STREAM))
    (conf / "base" / "credentials.yml").write_text(
        yaml.safe_dump({"kafka": {"sasl.username": "from-conf", "sasl.password": "conf-pw"}})
    )
    return conf


def _archive(conf: Path, target: Path) -> Path:
    """As `kedro package` writes it: the conf folder itself, local/*.yml left out."""
    with tarfile.open(target, "w:gz") as archive:
        archive.add(conf, arcname="conf", filter=lambda m: None if "/local/" in m.name else m)
    return target


def test_an_environment_without_its_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "local").mkdir()
    check_conf_source(tmp_path, "local")
    check_conf_source(tmp_path, None)
    with pytest.raises(ConfigError) as error:
        check_conf_source(tmp_path, "prod")
    assert str(error.value).startswith(f"Environment 'prod' has no folder {tmp_path.name}/prod")
    assert str(error.value).endswith("environments: 'base', 'local'")


def test_a_missing_conf_source_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^Conf source .*nowhere.tar.gz does not exist: give"):
        check_conf_source(tmp_path / "nowhere.tar.gz", None)


def test_archives_are_recognised_by_their_name() -> None:
    assert is_archive(Path("dist/conf-shop.tar.gz"))
    assert is_archive(Path("conf.zip"))
    assert not is_archive(Path("conf"))


def test_stream_yml_is_read_from_an_archive_of_an_installed_package(
    mini_project: Path, tmp_path: Path
) -> None:
    archive = _archive(_conf(tmp_path / "src"), tmp_path / "conf-mini_project.tar.gz")
    workdir = tmp_path / "run"
    workdir.mkdir()
    project = Project(workdir, package="mini_project", conf_source=archive)

    file = read_stream_file(project, None)

    assert list(file.streams) == ["s"]
    assert file.kafka.client_properties("admin")["sasl.username"] == "from-conf"


def test_a_mounted_credentials_file_wins_and_reads_the_environment(
    mini_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = _conf(tmp_path / "src")
    mounted = tmp_path / "secret" / "credentials.yml"
    mounted.parent.mkdir()
    mounted.write_text("kafka:\n  sasl.username: mounted\n  sasl.password: ${oc.env:KS_PW}\n")
    monkeypatch.setenv("KS_PW", "from-env")
    project = Project(tmp_path, package="mini_project", conf_source=conf, credentials=mounted)

    properties = read_stream_file(project, None).kafka.client_properties("admin")

    assert (properties["sasl.username"], properties["sasl.password"]) == ("mounted", "from-env")


def test_a_credentials_file_that_is_missing_or_not_a_mapping_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^Credentials file .*absent.yml does not exist"):
        read_credentials_file(tmp_path / "absent.yml")
    listed = tmp_path / "list.yml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"must map names to entries"):
        read_credentials_file(listed)
    assert read_credentials_file(_empty(tmp_path)) == {}


def _empty(tmp_path: Path) -> Path:
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    return empty


def test_a_package_that_is_not_installed_says_to_install_its_wheel(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^Package 'no_such_project' is not installed here"):
        Project(tmp_path, package="no_such_project").open()


def test_a_schema_is_found_in_the_working_directory_then_the_conf_source_then_the_package(
    mini_project: Path, tmp_path: Path
) -> None:
    import mini_project as package

    relative = Path("schemas/x.avsc")
    in_package = Path(package.__file__).parent / relative
    in_package.parent.mkdir(exist_ok=True)
    in_package.write_text("{}")
    try:
        conf = _conf(tmp_path / "src")
        workdir = tmp_path / "run"
        workdir.mkdir()
        project = Project(workdir, package="mini_project", conf_source=conf)
        assert project.locate(relative) == in_package

        (conf / relative).parent.mkdir()
        (conf / relative).write_text("{}")
        assert project.locate(relative) == conf / relative
        archived = Project(
            workdir, package="mini_project", conf_source=_archive(conf, tmp_path / "c.tar.gz")
        )
        assert archived.locate(relative).read_text() == "{}"
        assert archived.locate(relative) != conf / relative  # read out of the archive

        (workdir / relative).parent.mkdir()
        (workdir / relative).write_text("{}")
        assert project.locate(relative) == workdir / relative
    finally:
        in_package.unlink()
        in_package.parent.rmdir()


def test_a_schema_found_nowhere_names_every_place_looked(
    mini_project: Path, tmp_path: Path
) -> None:
    project = Project(tmp_path, package="mini_project", conf_source=tmp_path / "conf")

    with pytest.raises(ConfigError) as error:
        project.locate(Path("schemas/missing.avsc"))

    message = str(error.value)
    assert message.startswith("schemas/missing.avsc does not exist; looked in")
    assert str(tmp_path / "schemas/missing.avsc") in message
    assert str(tmp_path / "conf/schemas/missing.avsc") in message
    assert "mini_project/schemas/missing.avsc" in message
    with pytest.raises(ConfigError, match=r"^/nowhere/x.avsc does not exist$"):
        project.locate(Path("/nowhere/x.avsc"))
