#!/usr/bin/env bash
# The one command that runs the whole test suite on a fresh Debian machine.
# It installs what the tests need when it is missing (SoftHSM2 and OpenSC for the PKCS#11 tests, etcd for the audit
# tests), then builds and runs every test project. Tests never skip for a missing dependency: they fail and say what
# to install.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server) # a real etcd for the `kms-plugin audit` tests
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "test.sh: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "test.sh: the .NET 10 SDK is required (https://learn.microsoft.com/dotnet/core/install/linux-debian)" >&2
  exit 1
fi

dotnet build KmsPlugin.sln -c Release
dotnet test KmsPlugin.sln -c Release --no-build --logger "console;verbosity=normal" "$@"
