#!/usr/bin/env bash
# Creates a private SoftHSM2 token with an AES-256 root key for the pkcs11 root-key provider (tests, demos, CI).
# Run it again with another --key-label/--key-id to add a second key to the same token (rotation tests), or with
# another --token-label to add a second token to the same token directory (one SOFTHSM2_CONF serves both).
#
# Usage: create-softhsm-token.sh --token-dir DIR [--token-label kms] [--key-label kek1] [--key-id 01]
#                                [--pin-file FILE] [--so-pin-file FILE] [--module PATH] [--allow-duplicate-label]
#                                [--replace-key]
# Every option may also come from the environment: SOFTHSM_TOKEN_DIR, SOFTHSM_TOKEN_LABEL, SOFTHSM_KEY_LABEL,
# SOFTHSM_KEY_ID, SOFTHSM_PIN_FILE, SOFTHSM_SO_PIN_FILE, PKCS11_MODULE. Command-line options win.
#
# Layout under DIR: softhsm2.conf (directories.tokendir = DIR/tokens), tokens/, user.pin and so.pin (mode 0600)
# unless other PIN files are named. Existing PIN files are reused (and must be 0600); missing ones are filled with a
# random 32-hex-digit PIN. On success it prints KEY=VALUE lines (never PINs) for the caller:
#   SOFTHSM2_CONF, PKCS11_MODULE, TOKEN_LABEL, KEY_LABEL, KEY_ID, PIN_FILE
#
# PINs and argv: the plugin itself only ever reads its PIN from a file. softhsm2-util and pkcs11-tool, however,
# accept the PIN only as a command-line argument (--pin/--so-pin; without them they prompt on a TTY, which CI has
# not got), so for the few milliseconds those tools run the PIN is visible in /proc/<pid>/cmdline to local users.
# That is why the PINs here are random, throw-away, test-token PINs generated into 0600 files, never a production
# PIN: for a real HSM use the vendor's tooling or pkcs11-tool interactively (see hsm/README.md).
set -euo pipefail

die() {
    echo "create-softhsm-token.sh: $*" >&2
    exit 1
}

token_dir="${SOFTHSM_TOKEN_DIR:-}"
token_label="${SOFTHSM_TOKEN_LABEL:-kms}"
key_label="${SOFTHSM_KEY_LABEL:-kek1}"
key_id="${SOFTHSM_KEY_ID:-01}"
pin_file="${SOFTHSM_PIN_FILE:-}"
so_pin_file="${SOFTHSM_SO_PIN_FILE:-}"
module="${PKCS11_MODULE:-}"
allow_duplicate_label=0
replace_key=0

while [ $# -gt 0 ]; do
    case "$1" in
        --token-dir) token_dir="${2:?--token-dir needs a value}"; shift 2 ;;
        --token-label) token_label="${2:?--token-label needs a value}"; shift 2 ;;
        --key-label) key_label="${2:?--key-label needs a value}"; shift 2 ;;
        --key-id) key_id="${2:?--key-id needs a value}"; shift 2 ;;
        --pin-file) pin_file="${2:?--pin-file needs a value}"; shift 2 ;;
        --so-pin-file) so_pin_file="${2:?--so-pin-file needs a value}"; shift 2 ;;
        --module) module="${2:?--module needs a value}"; shift 2 ;;
        # Tests of ambiguous configuration need two keys with one label; never useful otherwise.
        --allow-duplicate-label) allow_duplicate_label=1; shift ;;
        # Fault tests: delete the key with --key-label and generate a new one under the same label and id, as an
        # operator regenerating a key would (the plugin must notice it is another key). Never useful otherwise.
        --replace-key) replace_key=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

[ -n "$token_dir" ] || die "--token-dir (or SOFTHSM_TOKEN_DIR) is required"
[[ "$key_id" =~ ^([0-9a-fA-F]{2})+$ ]] || die "--key-id must be an even number of hex digits (CKA_ID), got '$key_id'"
# Lower-case so the CKA_ID in the plugin config, the tests and pkcs11-tool output all read the same.
key_id="$(printf '%s' "$key_id" | tr 'A-F' 'a-f')"

for tool in softhsm2-util pkcs11-tool; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found; install it with: apt-get install -y softhsm2 opensc"
done

if [ -z "$module" ]; then
    # The Debian package puts the module in the multiarch softhsm directory; dpkg knows where.
    module="$(dpkg -L libsofthsm2 2>/dev/null | grep '/libsofthsm2\.so$' | head -n 1 || true)"
    for candidate in /usr/lib/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so /usr/lib64/softhsm/libsofthsm2.so; do
        [ -n "$module" ] && break
        [ -f "$candidate" ] && module="$candidate"
    done
fi
[ -n "$module" ] && [ -f "$module" ] || die "libsofthsm2.so not found; install it with: apt-get install -y softhsm2 opensc"

umask 077
mkdir -p "$token_dir/tokens"
token_dir="$(cd "$token_dir" && pwd -P)"
chmod 700 "$token_dir" "$token_dir/tokens"
conf="$token_dir/softhsm2.conf"
pin_file="${pin_file:-$token_dir/user.pin}"
so_pin_file="${so_pin_file:-$token_dir/so.pin}"

if [ ! -f "$conf" ]; then
    # A private config: tests never touch /var/lib/softhsm, and SOFTHSM2_CONF selects this token directory.
    cat > "$conf" <<EOF
directories.tokendir = $token_dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
fi
export SOFTHSM2_CONF="$conf"

# make_pin FILE: reuse a 0600 PIN file or create one holding a random PIN (128 bits, hex so any tool accepts it).
make_pin() {
    local file="$1"
    if [ -f "$file" ]; then
        local mode
        mode="$(stat -c '%a' "$file")"
        [ "$mode" = "600" ] || [ "$mode" = "400" ] || die "$file must be mode 0600 (it is $mode)"
    else
        od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$file"
        chmod 600 "$file"
    fi
}
make_pin "$pin_file"
make_pin "$so_pin_file"
# The plugin trims one trailing newline; the tools get the PIN exactly as stored, without it.
pin="$(tr -d '\n' < "$pin_file")"
so_pin="$(tr -d '\n' < "$so_pin_file")"

# slot_of_token LABEL: the slot id of the token with exactly this label, from softhsm2-util (empty if none).
# Not pkcs11-tool --token-label: OpenSC matches that by prefix, so "kms" would also pick a token named "kms-2".
slot_of_token() {
    softhsm2-util --show-slots 2>/dev/null | awk -v want="$1" '
        /^Slot [0-9]+/ { slot = $2 }
        $1 == "Label:" { sub(/^[[:space:]]*Label:[[:space:]]*/, ""); sub(/[[:space:]]+$/, ""); if ($0 == want) { print slot; exit } }'
}

# has_key_label LABEL: does pkcs11-tool's object listing on stdin have a key with exactly this label?
has_key_label() {
    awk -v want="$1" '
        $1 == "label:" { sub(/^[[:space:]]*label:[[:space:]]*/, ""); sub(/[[:space:]]+$/, ""); if ($0 == want) { found = 1 } }
        END { exit found ? 0 : 1 }'
}

# Initialise the token only if this token directory has no token with that label yet.
slot="$(slot_of_token "$token_label")"
if [ -z "$slot" ]; then
    softhsm2-util --init-token --free --label "$token_label" --so-pin "$so_pin" --pin "$pin" >/dev/null
    slot="$(slot_of_token "$token_label")"
    [ -n "$slot" ] || die "token '$token_label' was initialised but softhsm2-util does not list it"
fi

# Generate the key only if no secret key with that label exists (so re-running is harmless).
existing="$(pkcs11-tool --module "$module" --slot "$slot" --login --pin "$pin" \
    --list-objects --type secrkey 2>/dev/null || true)"
if [ "$replace_key" = 1 ] && printf '%s\n' "$existing" | has_key_label "$key_label"; then
    pkcs11-tool --module "$module" --slot "$slot" --login --pin "$pin" \
        --delete-object --type secrkey --label "$key_label" >/dev/null
    existing=""
fi
if [ "$allow_duplicate_label" = 1 ] || ! printf '%s\n' "$existing" | has_key_label "$key_label"; then
    # AES-256 (AES:32 is in bytes). --sensitive and no --extractable: CKA_SENSITIVE=true, CKA_EXTRACTABLE=false,
    # so the key value can never be read out (PKCS#11 v2.40 section 4.9). --private: CKA_PRIVATE=true, visible only
    # after C_Login. --usage-decrypt sets CKA_ENCRYPT and CKA_DECRYPT for a secret key (CKM_AES_GCM via
    # C_Encrypt/C_Decrypt); --usage-wrap adds CKA_WRAP/CKA_UNWRAP for a CKM_AES_KEY_WRAP_PAD option.
    pkcs11-tool --module "$module" --slot "$slot" --login --pin "$pin" \
        --keygen --key-type AES:32 --label "$key_label" --id "$key_id" \
        --sensitive --private --usage-decrypt --usage-wrap >/dev/null
fi

echo "SOFTHSM2_CONF=$conf"
echo "PKCS11_MODULE=$module"
echo "TOKEN_LABEL=$token_label"
echo "KEY_LABEL=$key_label"
echo "KEY_ID=$key_id"
echo "PIN_FILE=$pin_file"
