"""Packages and built-in data for setuptools; every other setting is in pyproject.toml.

The repository keeps its data folders at the top level (specs/, suites/, loadtests/,
cassettes/); each is shipped inside the package as chatprobe/_data/<folder>/ (read with
importlib.resources by chatprobe._data), with every sub-folder listed as a package so that
setuptools copies the files and does not warn about folders it would otherwise skip.
"""

from setuptools import find_namespace_packages, setup

DATA_FOLDERS = ("specs", "suites", "loadtests", "cassettes")  # = chatprobe._data.FOLDERS
DATA_FILES = ["*.yaml", "*.yml", "*.md", "*.txt", "*.py", "*.jsonl", "*.csv"]

# namespace discovery: folders of data files inside the package (report/templates) count too
packages = find_namespace_packages(
    "src", include=["chatprobe", "chatprobe.*"], exclude=["*.__pycache__", "*.__pycache__.*"]
)
package_dir = {"": "src"}
package_data = {"chatprobe": ["py.typed"], "chatprobe.report.templates": ["*.j2"]}
for folder in DATA_FOLDERS:
    root = f"chatprobe._data.{folder}"
    package_dir[root] = folder
    for package in (root, *(f"{root}.{sub}" for sub in find_namespace_packages(folder))):
        packages.append(package)
        package_data[package] = DATA_FILES

setup(packages=packages, package_dir=package_dir, package_data=package_data)
