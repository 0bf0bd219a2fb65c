# shellcheck shell=bash
# shellcheck disable=SC2034 # the settings below are used by up, down, status
# Shared code of e2e/stack/{up,down,status}: the real local stack that the
# e2e suite runs against (see "The real local stack" in the design notes).
#
# Layout:
#   e2e/stack/              this code (committed)
#   e2e/.stack/             runtime state of one checkout (gitignored):
#     env kubeconfig bin/ pids/ logs/ ports/ pki/ conf/ data/
#   ~/.cache/licenseware-stack/   installs shared by all checkouts, one
#     versioned directory per component with a .stamp of the recipe that
#     built it, plus go/ (GOMODCACHE, GOCACHE) and m2/ (Maven repository).

# ---------------------------------------------------------------------------
# Pinned versions: the only place they are written down.
# ---------------------------------------------------------------------------
KUBE_VERSION=v1.36.3     # k8s.io/kubernetes; its staging modules are v0.36.3
# Kubernetes 1.36.3 requires go.etcd.io/etcd/client/v3 v3.6.8: the server of
# the same release is what it is tested against, and its modules are already
# in the module cache from the kube build.
ETCD_VERSION=v3.6.8
KAFKA_VERSION=4.3.1
KAFKA_SCALA=2.13
LOG4J_VERSION=2.25.5     # Kafka 4 logs through log4j2
# v1.24.1 is not served by proxy.golang.org (403); v1.24.0 is the last v1
# release that resolves. v1 is the line with the SQLite backend.
FERRETDB_VERSION=v1.24.0
# helm.sh/helm/v3: the chart tooling (helm lint/template in the e2e suite).
HELM_VERSION=v3.22.0

# Without kubelets and a scheduler only these controllers do anything useful:
# ownerReference cascades, namespace deletion, default ServiceAccounts and
# their tokens, and the kube-root-ca.crt ConfigMap in every namespace.
KCM_CONTROLLERS=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller
SERVICE_CIDR=10.96.0.0/12
SERVICE_CLUSTER_IP=10.96.0.1
KAFKA_HEAP_OPTS=(-Xms256m -Xmx768m)

# Components in start order; `down` walks STOP_ORDER.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kafka ferretdb redis)
STOP_ORDER=(kube-controller-manager kube-apiserver etcd kafka ferretdb redis)

# Seconds a component gets to become healthy before `up` gives up on it.
declare -A READY_TIMEOUT=(
  [etcd]=30 [kube-apiserver]=120 [kube-controller-manager]=90
  [kafka]=120 [ferretdb]=30 [redis]=15
)
# Seconds between SIGTERM and SIGKILL in `down` (Kafka flushes its logs).
declare -A STOP_TIMEOUT=(
  [etcd]=15 [kube-apiserver]=15 [kube-controller-manager]=15
  [kafka]=40 [ferretdb]=15 [redis]=15
)

# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------
STACK_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
STATE=$(dirname "$STACK_SRC")/.stack
CACHE=${LW_STACK_CACHE:-$HOME/.cache/licenseware-stack}
PKI=$STATE/pki
CONF=$STATE/conf
DATA=$STATE/data

KUBE_DIR=$CACHE/kube/$KUBE_VERSION
ETCD_DIR=$CACHE/etcd/$ETCD_VERSION
FERRETDB_DIR=$CACHE/ferretdb/$FERRETDB_VERSION
# Go GC target of the stack's FerretDB (see start_ferretdb); LW_STACK_FERRETDB_GOGC overrides it.
FERRETDB_GOGC=${LW_STACK_FERRETDB_GOGC:-400}
# Go GC target of the stack's kube-apiserver (see start_apiserver); LW_STACK_APISERVER_GOGC overrides it.
APISERVER_GOGC=${LW_STACK_APISERVER_GOGC:-400}
KAFKA_DIR=$CACHE/kafka/${KAFKA_VERSION}-scala${KAFKA_SCALA}-log4j${LOG4J_VERSION}
HELM_DIR=$CACHE/helm/$HELM_VERSION

# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------
PROG=$(basename "$0")
T0=$SECONDS

log() { printf '%s [%3ds] %s\n' "$PROG" "$((SECONDS - T0))" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# The one-line message names the component and its log; the tail follows so
# that CI output alone usually tells what went wrong.
fail_component() { # name message
  local name=$1 msg=$2 logf=$STATE/logs/$1.log
  printf '%s: error: %s %s (log: %s)\n' "$PROG" "$name" "$msg" "$logf" >&2
  if [[ -s $logf ]]; then
    printf -- '--- last 20 lines of %s ---\n' "$logf" >&2
    tail -n 20 "$logf" >&2
    printf -- '---\n' >&2
  fi
  exit 1
}

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
# Rewrites a file only when its content changes, so a warm `up` touches
# nothing and config fingerprints stay stable. Content comes on stdin.
write_if_changed() { # path [mode]
  local path=$1 mode=${2:-} tmp
  # The temporary file lives in the state dir itself, not next to $path, so
  # that an unchanged file leaves its directory untouched too.
  tmp=$(mktemp "$STATE/.write.XXXXXX")
  cat >"$tmp"
  [[ -n $mode ]] && chmod "$mode" "$tmp"
  if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$path"
  fi
}

# Values of the env file are unquoted when that is unambiguous, so that
# dotenv-style readers see the same thing as `. env`.
shell_quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# Replaces a symlink only when it points elsewhere.
link() { # target link
  [[ -L $2 && "$(readlink "$2")" == "$1" ]] || ln -sfn "$1" "$2"
}

probe() { python3 "$STACK_SRC/probe.py" "$@"; }

# ---------------------------------------------------------------------------
# Host prerequisites (Debian packages)
# ---------------------------------------------------------------------------
APT_UPDATED=
apt_install() { # package...
  local sudo=() created_policy=
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "need Debian packages $* (run as root or install them)"
    sudo=(sudo)
  fi
  # Installing a server package must not start a system-wide daemon (e.g. a
  # second Redis on 6379) that `down` would never stop.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  log "installing Debian packages: $*"
  local rc=0
  {
    if [[ -z $APT_UPDATED ]]; then
      "${sudo[@]}" apt-get update -qq && APT_UPDATED=1
    fi &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  } >"$CACHE/apt.log" 2>&1 || rc=$?
  [[ -n $created_policy ]] && "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || { tail -n 20 "$CACHE/apt.log" >&2; die "apt-get install $* failed (log: $CACHE/apt.log)"; }
}

# command -> Debian package that provides it
declare -A DEB_FOR=(
  [curl]=curl [openssl]=openssl [python3]=python3 [setsid]=util-linux
  [flock]=util-linux [redis-server]=redis-server [java]=openjdk-17-jre-headless
  [mvn]=maven
)

ensure_commands() { # command...
  local c missing=()
  for c in "$@"; do
    command -v "$c" >/dev/null || missing+=("${DEB_FOR[$c]:?no package known for $c}")
  done
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

# ---------------------------------------------------------------------------
# Go builds: module and build caches live in the stack cache, so the cache
# directory is self-contained and a CI cache of it is enough.
# ---------------------------------------------------------------------------
go_env() {
  command -v go >/dev/null ||
    die "Go is required (k8s.io/kubernetes $KUBE_VERSION needs go >= 1.26); Debian's golang is too old"
  export GOPATH=$CACHE/go GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build
  export GOFLAGS=-buildvcs=false CGO_ENABLED=0
  # Keeps a user's GOPROXY/GONOSUMDB; only the caches move.
}

# Downloads module@version into the module cache and prints one field of
# `go mod download -json` (Dir, GoMod, ...).
gomod_field() { # field module@version workdir
  (cd "$3" && go mod download -json "$2") |
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# A component's install is valid when its stamp holds exactly the recipe
# that would build it now: changing a pin or a build flag rebuilds.
stamp_ok() { # dir recipe
  [[ -f $1/.stamp && "$(<"$1/.stamp")" == "$2" ]]
}

# k8s.io/kubernetes is not meant to be a dependency: its go.mod requires its
# staging modules (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces
# them with ./staging/src/... directories. A wrapper module that replaces the
# same list with the published v0.x.y tags makes it buildable from the proxy.
kube_ldflags() {
  local p flags="-s -w" minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    flags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  printf '%s' "$flags"
}

install_kube() {
  local bins=(kube-apiserver kube-controller-manager kubectl) recipe ld
  ld=$(kube_ldflags)
  recipe="k8s.io/kubernetes@$KUBE_VERSION bins=${bins[*]} ldflags=$ld"
  stamp_ok "$KUBE_DIR" "$recipe" && return 0
  go_env
  local t=$SECONDS work=$CACHE/kube/.work-$KUBE_VERSION staging=v0.${KUBE_VERSION#v1.} gomod
  rm -rf "$work" && mkdir -p "$work"
  log "fetching k8s.io/kubernetes $KUBE_VERSION go.mod"
  if ! gomod=$(gomod_field GoMod "k8s.io/kubernetes@$KUBE_VERSION" "$work") || [[ ! -f $gomod ]]; then
    die "could not download the go.mod of k8s.io/kubernetes@$KUBE_VERSION"
  fi
  {
    printf 'module lwstack/kube\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBE_VERSION"
    # Every `k8s.io/x => ./staging/src/k8s.io/x` line becomes `k8s.io/x => k8s.io/x v0.N.P`.
    awk -v v="$staging" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }' "$gomod"
    printf ')\n'
  } >"$work/go.mod"
  grep -q "k8s.io/client-go => k8s.io/client-go $staging" "$work/go.mod" ||
    die "generated kube wrapper go.mod has no staging replaces ($work/go.mod)"
  log "downloading Go modules for kubernetes $KUBE_VERSION"
  # Each package gets the version: a bare path would mean "upgrade to latest".
  local pkgs=("${bins[@]/#/k8s.io/kubernetes/cmd/}")
  (cd "$work" && go get "${pkgs[@]/%/@$KUBE_VERSION}") >"$work/get.log" 2>&1 ||
    { tail -n 20 "$work/get.log" >&2; die "go get for kubernetes $KUBE_VERSION failed (log: $work/get.log)"; }
  log "modules ready ($((SECONDS - t))s); building ${bins[*]} $KUBE_VERSION (first run: about 5 minutes on 2 cores)..."
  local tb=$SECONDS
  mkdir -p "$work/bin"
  (cd "$work" && go build -trimpath -ldflags "$ld" -o "$work/bin/" "${pkgs[@]}") \
    >"$work/build.log" 2>&1 ||
    { tail -n 20 "$work/build.log" >&2; die "building kubernetes $KUBE_VERSION failed (log: $work/build.log)"; }
  rm -rf "$KUBE_DIR" && mkdir -p "$KUBE_DIR"
  mv "$work/bin" "$KUBE_DIR/bin"
  cp "$work/go.mod" "$work/go.sum" "$KUBE_DIR/"
  printf '%s' "$recipe" >"$KUBE_DIR/.stamp"
  rm -rf "$work"
  log "built kubernetes $KUBE_VERSION (build $((SECONDS - tb))s, total $((SECONDS - t))s)"
}

# etcd's modules carry `replace` directives (server/v3 => ../api, ...), so
# `go install` refuses them; as a dependency of a wrapper module the replaces
# are ignored and the published tags are used.
install_etcd() {
  local recipe="go.etcd.io/etcd/server/v3@$ETCD_VERSION ldflags=-s -w"
  stamp_ok "$ETCD_DIR" "$recipe" && return 0
  go_env
  local t=$SECONDS work=$CACHE/etcd/.work-$ETCD_VERSION
  rm -rf "$work" && mkdir -p "$work"
  log "building etcd $ETCD_VERSION (first run, under a minute)..."
  printf 'module lwstack/etcd\n\ngo 1.24\n' >"$work/go.mod"
  (cd "$work" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" &&
    go build -trimpath -ldflags "-s -w" -o "$work/bin/etcd" go.etcd.io/etcd/server/v3) >"$work/build.log" 2>&1 ||
    { tail -n 20 "$work/build.log" >&2; die "building etcd $ETCD_VERSION failed (log: $work/build.log)"; }
  rm -rf "$ETCD_DIR" && mkdir -p "$ETCD_DIR"
  mv "$work/bin" "$ETCD_DIR/bin"
  cp "$work/go.mod" "$work/go.sum" "$ETCD_DIR/"
  printf '%s' "$recipe" >"$ETCD_DIR/.stamp"
  rm -rf "$work"
  log "built etcd $ETCD_VERSION ($((SECONDS - t))s)"
}

# Not `go install ...@version`: the proxy answers 403 for FerretDB's version
# list, which `go install` needs for its deprecation check, and a binary built
# as a dependency panics at start because build/version/version.txt (made by
# the project's release tooling) is missing from the module. So: the module
# source, plus that one file, built as the main module.
install_ferretdb() {
  local mod=github.com/FerretDB/FerretDB recipe
  recipe="$mod@$FERRETDB_VERSION version.txt ldflags=-s -w scram-done"
  stamp_ok "$FERRETDB_DIR" "$recipe" && return 0
  go_env
  local t=$SECONDS work=$CACHE/ferretdb/.work-$FERRETDB_VERSION src
  rm -rf "$work" && mkdir -p "$work"
  log "building ferretdb $FERRETDB_VERSION (first run, under a minute)..."
  src=$(gomod_field Dir "$mod@$FERRETDB_VERSION" "$work") ||
    die "could not download $mod@$FERRETDB_VERSION"
  cp -R "$src" "$work/src"
  chmod -R u+w "$work/src"
  printf '%s\n' "$FERRETDB_VERSION" >"$work/src/build/version/version.txt"
  # FerretDB 1.x ignores saslStart's skipEmptyExchange, which MongoDB honours since
  # 4.4: it answers the client's final SCRAM message with done=false, and the Rust
  # driver, which requires done=true there, cannot authenticate. One line makes it
  # answer as MongoDB does (done once the proof is verified).
  local sasl=$work/src/internal/handler/msg_saslcontinue.go
  sed -i 's|"done", valid, // for compatibility.*|"done", conv.Valid(),|' "$sasl"
  grep -q '"done", conv.Valid(),' "$sasl" || die "the FerretDB SCRAM patch no longer applies to $FERRETDB_VERSION"
  (cd "$work/src" && go build -trimpath -ldflags "-s -w" -o "$work/bin/ferretdb" ./cmd/ferretdb) \
    >"$work/build.log" 2>&1 ||
    { tail -n 20 "$work/build.log" >&2; die "building ferretdb $FERRETDB_VERSION failed (log: $work/build.log)"; }
  rm -rf "$FERRETDB_DIR" && mkdir -p "$FERRETDB_DIR"
  mv "$work/bin" "$FERRETDB_DIR/bin"
  printf '%s' "$recipe" >"$FERRETDB_DIR/.stamp"
  rm -rf "$work"
  log "built ferretdb $FERRETDB_VERSION ($((SECONDS - t))s)"
}

# helm's go.mod has no replace directives, so `go install module@version`
# builds it as the main module (no wrapper needed). The ldflags are those of
# helm's Makefile: without them `helm version` says "v3.22" and the default
# Capabilities.KubeVersion of `helm template`/`lint` is v1.20; with them it
# is the client-go minor helm was built with.
helm_ldflags() { # client-go version (v0.N.P)
  local minor=${1#v0.}
  minor=${minor%%.*}
  printf '%s' "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  printf '%s' " -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local p
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    printf '%s' " -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
  done
}

install_helm() {
  local mod=helm.sh/helm/v3 recipe
  # The client-go minor in the ldflags follows from the helm version.
  recipe="$mod/cmd/helm@$HELM_VERSION ldflags=$(helm_ldflags 'v0.<client-go minor>.0')"
  stamp_ok "$HELM_DIR" "$recipe" && return 0
  go_env
  local t=$SECONDS work=$CACHE/helm/.work-$HELM_VERSION gomod clientgo
  rm -rf "$work" && mkdir -p "$work"
  log "building helm $HELM_VERSION (first run, 2-4 minutes on 2 cores)..."
  if ! gomod=$(gomod_field GoMod "$mod@$HELM_VERSION" "$work") || [[ ! -f $gomod ]]; then
    die "could not download the go.mod of $mod@$HELM_VERSION"
  fi
  clientgo=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")
  [[ $clientgo == v0.* ]] || die "no k8s.io/client-go requirement in $gomod"
  (cd "$work" && GOBIN=$work/bin go install -trimpath -ldflags "$(helm_ldflags "$clientgo")" \
    "$mod/cmd/helm@$HELM_VERSION") >"$work/build.log" 2>&1 ||
    { tail -n 20 "$work/build.log" >&2; die "building helm $HELM_VERSION failed (log: $work/build.log)"; }
  rm -rf "$HELM_DIR" && mkdir -p "$HELM_DIR"
  mv "$work/bin" "$HELM_DIR/bin"
  printf '%s' "$recipe" >"$HELM_DIR/.stamp"
  rm -rf "$work"
  log "built helm $HELM_VERSION ($((SECONDS - t))s)"
}

install_kafka() {
  local pom=$STACK_SRC/kafka-pom.xml recipe
  recipe="kafka_$KAFKA_SCALA@$KAFKA_VERSION log4j@$LOG4J_VERSION pom=$(sha256sum <"$pom" | cut -c1-16)"
  stamp_ok "$KAFKA_DIR" "$recipe" && return 0
  ensure_commands java mvn
  local t=$SECONDS work=$KAFKA_DIR.work
  rm -rf "$work" && mkdir -p "$work"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central (first run)..."
  # Maven writes target/ next to the pom it runs, so it runs on a copy.
  cp "$pom" "$work/pom.xml"
  (cd "$work" && mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" \
    -Dkafka.version="$KAFKA_VERSION" -Dscala.binary="$KAFKA_SCALA" -Dlog4j.version="$LOG4J_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$work/lib") >"$work/mvn.log" 2>&1 ||
    { tail -n 20 "$work/mvn.log" >&2; die "resolving Kafka $KAFKA_VERSION jars failed (log: $work/mvn.log)"; }
  [[ -f $work/lib/kafka_$KAFKA_SCALA-$KAFKA_VERSION.jar ]] || die "Kafka jar missing after resolution ($work/lib)"
  rm -rf "$KAFKA_DIR" && mkdir -p "$KAFKA_DIR"
  mv "$work/lib" "$KAFKA_DIR/lib"
  printf '%s' "$recipe" >"$KAFKA_DIR/.stamp"
  rm -rf "$work"
  log "fetched Kafka $KAFKA_VERSION jars ($((SECONDS - t))s)"
}

install_all() {
  mkdir -p "$CACHE"
  ensure_commands curl openssl python3 setsid flock java redis-server
  # Checkouts share the cache: one installer at a time (fd 8), the others
  # wait for its build and then find the stamps in place.
  exec 8>"$CACHE/.install.lock"
  if ! flock -n 8; then
    log "waiting for another e2e/stack/up that is installing into $CACHE"
    flock -w 3600 8 || die "another e2e/stack/up still holds $CACHE/.install.lock after an hour"
  fi
  install_kube
  install_etcd
  install_ferretdb
  install_kafka
  install_helm
  drop_go_caches
  exec 8>&-
}

# Later runs use only the built binaries. The Go build and module caches (about
# 6 GB after the kube build) would serve only a rebuild after a pin changes, which
# fetches the modules again in seconds; a CI machine's disk cannot spare them.
# LW_STACK_KEEP_GO_CACHE=1 keeps them (for work on the stack's build recipes).
drop_go_caches() {
  [[ -d $CACHE/go && ${LW_STACK_KEEP_GO_CACHE:-0} != 1 ]] || return 0
  log "removing the Go build and module caches ($(du -sh "$CACHE/go" | cut -f1)): the binaries are built"
  chmod -R u+w "$CACHE/go" && rm -rf "$CACHE/go"
}

# ---------------------------------------------------------------------------
# Processes
#
# pids/<name>.pid holds "pid starttime exe": the start time (clock ticks since
# boot, from /proc/<pid>/stat) and the executable make the pid unambiguous,
# so a recycled pid is never mistaken for ours and never killed.
# pids/<name>.args holds the fingerprint of the command line and config it
# was started with: a different fingerprint means "restart".
# ---------------------------------------------------------------------------
proc_starttime() { # pid
  local stat fields
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  # Field 22; the command name (field 2) may contain spaces, so cut after ')'.
  stat=${stat##*) }
  read -r -a fields <<<"$stat"
  printf '%s' "${fields[19]}"
}

proc_exe() { # pid
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  printf '%s' "${exe% (deleted)}"
}

# Prints the pid of a component if the recorded process is alive and is
# still the process that `up` started.
component_pid() { # name
  local f=$STATE/pids/$1.pid pid st exe
  [[ -f $f ]] || return 1
  read -r pid st exe <"$f" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ "$(proc_starttime "$pid")" == "$st" ]] || return 1
  [[ "$(proc_exe "$pid")" == "$exe" ]] || return 1
  printf '%s' "$pid"
}

start_component() { # name fingerprint exe args...
  local name=$1 fp=$2 exe=$3 logf=$STATE/logs/$1.log pid st
  shift 3
  mkdir -p "$STATE/logs" "$STATE/pids"
  { printf '\n===== %s %s:' "$(date '+%F %T')" "$name"; printf ' %q' "$@"; printf '\n'; } >>"$logf"
  # Where this start's output begins, for checks of what the server logged.
  stat -c %s "$logf" >"$STATE/pids/$name.logpos"
  # setsid: its own session and process group, so `down` can signal the
  # whole group (children included) and a Ctrl-C of `up` does not reach it.
  # No fd of ours may stay open in it, or `$(up)` / `up | tee` would hang.
  # 8>&- 9>&-: the locks of up/down must not be inherited, or the server
  # would hold them for its whole life.
  setsid "$@" </dev/null >>"$logf" 2>&1 8>&- 9>&- &
  pid=$!
  exe=$(readlink -f "$exe")
  # Until setsid has exec'd the server, /proc shows bash; record the process
  # only once it is the server, so later identity checks are exact.
  local i
  for ((i = 0; i < 100; i++)); do
    [[ "$(proc_exe "$pid")" == "$exe" ]] && break
    kill -0 "$pid" 2>/dev/null || fail_component "$name" "exited immediately"
    sleep 0.05
  done
  st=$(proc_starttime "$pid") || fail_component "$name" "exited immediately"
  printf '%s %s %s\n' "$pid" "$st" "$exe" >"$STATE/pids/$name.pid"
  printf '%s\n' "$fp" >"$STATE/pids/$name.args"
}

# True while a process of the group is alive. Zombies do not count: where
# PID 1 reaps orphans late (as in some sandboxes), `kill -0` would still see
# a server that has long exited.
group_alive() { # pgid
  local f line st pg
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    line=${line##*) }
    read -r st _ pg _ <<<"$line"
    [[ $pg == "$1" && $st != Z ]] && return 0
  done
  return 1
}

stop_component() { # name
  local name=$1 pid i timeout=${STOP_TIMEOUT[$1]:-15}
  if ! pid=$(component_pid "$name"); then
    rm -f "$STATE/pids/$name.pid"
    return 0
  fi
  log "stopping $name (pid $pid)"
  # Negative pid: the process group that setsid created, i.e. the server and
  # any children it forked.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 5; i++)); do
    group_alive "$pid" || break
    sleep 0.2
  done
  if group_alive "$pid"; then
    log "$name did not stop within ${timeout}s, sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 25; i++)); do
      group_alive "$pid" || break
      sleep 0.2
    done
  fi
  rm -f "$STATE/pids/$name.pid"
}

# ---------------------------------------------------------------------------
# Ports: picked once, remembered in ports/<key>, reused while free (or held by
# the component itself), so restarts keep addresses and data stay valid.
# ---------------------------------------------------------------------------
port_for() { # key component
  local f=$STATE/ports/$1 p others=()
  mkdir -p "$STATE/ports"
  if [[ -s $f ]]; then
    p=$(<"$f")
    if component_pid "$2" >/dev/null || probe free "$p"; then
      printf '%s' "$p"
      return 0
    fi
    log "port $p of $1 is taken by another process, picking a new one"
  fi
  shopt -s nullglob
  local g
  for g in "$STATE"/ports/*; do [[ $g == "$f" ]] || others+=("$(<"$g")"); done
  shopt -u nullglob
  p=$(probe port "${others[@]}")
  printf '%s\n' "$p" >"$f"
  printf '%s' "$p"
}

saved_port() { # key
  [[ -s $STATE/ports/$1 ]] && cat "$STATE/ports/$1"
}

# ---------------------------------------------------------------------------
# Health checks: exit 0 when the server answers a real request.
# ---------------------------------------------------------------------------
logged_since_start() { # name fixed-string
  local pos
  pos=$(cat "$STATE/pids/$1.logpos" 2>/dev/null) || pos=0
  # Not a pipe: with pipefail, grep -q quitting early would fail the pipe.
  grep -qF -- "$2" < <(tail -c "+$((pos + 1))" "$STATE/logs/$1.log" 2>/dev/null)
}

kube_curl() { # path
  curl -fsS --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$(saved_port kube-apiserver)$1"
}

healthy() { # name
  local p
  case $1 in
    etcd)
      p=$(saved_port etcd) || return 1
      [[ "$(curl -fsS --max-time 2 "http://127.0.0.1:$p/health" 2>/dev/null)" == *'"health":"true"'* ]] ;;
    kube-apiserver)
      [[ "$(kube_curl /readyz 2>/dev/null)" == ok ]] &&
        kube_curl /api/v1/namespaces/default >/dev/null 2>&1 ;;
    kube-controller-manager)
      p=$(saved_port kube-controller-manager) || return 1
      # -k: the controller-manager serves a self-signed certificate.
      [[ "$(curl -fsSk --max-time 2 "https://127.0.0.1:$p/healthz" 2>/dev/null)" == ok ]] ;;
    kafka)
      p=$(saved_port kafka) || return 1
      # The broker says it finished starting (its listener can answer a
      # little earlier), and it answers requests.
      logged_since_start kafka 'Kafka Server started' && probe kafka "$p" 2>/dev/null ;;
    ferretdb)
      p=$(saved_port ferretdb) || return 1
      probe mongo "$p" 2>/dev/null ;;
    redis)
      p=$(saved_port redis) || return 1
      probe redis "$p" 2>/dev/null ;;
    *) return 1 ;;
  esac
}

healthy_within() { # name seconds
  local deadline=$((SECONDS + $2))
  until healthy "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.3
  done
}

# name -> $SECONDS when this run of `up` started it.
declare -A STARTED=()

# Waits for a component that is running (or just started). Fails fast when
# the process dies and within READY_TIMEOUT when it never gets healthy.
wait_healthy() { # name [extra-check-function]
  local name=$1 extra=${2:-} deadline=$((SECONDS + ${READY_TIMEOUT[$1]:-60}))
  while :; do
    if healthy "$name" && { [[ -z $extra ]] || "$extra"; }; then
      return 0
    fi
    if ! component_pid "$name" >/dev/null; then
      [[ -n ${STARTED[$name]:-} ]] || fail_component "$name" "stopped while up was waiting for it"
      fail_component "$name" "exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      [[ -n ${STARTED[$name]:-} ]] ||
        log "$name was already running but does not answer; e2e/stack/down, then up, restarts it"
      fail_component "$name" "did not become healthy within ${READY_TIMEOUT[$name]:-60}s"
    fi
    sleep 0.3
  done
}

# up and down serialize on e2e/.stack/.lock (fd 9), bounded so nothing hangs.
take_lock() { # timeout-seconds
  exec 9>"$STATE/.lock"
  if ! flock -n 9; then
    log "waiting for another e2e/stack/up or down to finish (lock: $STATE/.lock)"
    flock -w "$1" 9 || die "another e2e/stack/up or down still holds $STATE/.lock after $1s"
  fi
}

external_mongo_url() {
  [[ -s $STATE/mongo-external ]] && cat "$STATE/mongo-external"
}
