#!/usr/bin/env bash
# mesh-ca.sh: the development CA of the mesh and one certificate per service (openssl CLI).
#
#   tools/mesh-ca.sh [-d DIR] [-t TRUST_DOMAIN] [-n NAMESPACE] [-h HOURS] [--new-ca] SERVICE...
#
# Writes into DIR (default .run/mesh/certs):
#   ca.pem, ca.key               the CA (EC P-256, self-signed, 10 days), created when missing
#                                or expiring within 2 days, or with --new-ca
#   SERVICE.pem, SERVICE.key     SERVICE's identity: EC P-256 key, certificate signed by the CA,
#                                valid HOURS (24) hours from now, URI SAN
#                                spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE (the SPIFFE X.509
#                                SVID form: the URI SAN is the identity, the CN is informative),
#                                DNS SAN SERVICE and localhost, clientAuth and serverAuth.
# Rotation is re-running the script: each SERVICE gets a fresh key and certificate, written
# to a temporary file and renamed over the old one, so a sidecar that watches the files
# never reads half a file. The CA is kept (rotating it invalidates every identity).
# TRUST_DOMAIN defaults to switchboard.local, NAMESPACE to default.
set -euo pipefail

dir=.run/mesh/certs
td=switchboard.local
ns=default
hours=24
new_ca=0
while [ $# -gt 0 ]; do
	case $1 in
	-d) dir=$2; shift 2 ;;
	-t) td=$2; shift 2 ;;
	-n) ns=$2; shift 2 ;;
	-h) hours=$2; shift 2 ;;
	--new-ca) new_ca=1; shift ;;
	--) shift; break ;;
	-*) echo "mesh-ca: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: mesh-ca.sh [-d DIR] [-t TD] [-n NS] [-h HOURS] [--new-ca] SERVICE..." >&2; exit 2; }
[[ $hours =~ ^[0-9]+$ ]] && [ "$hours" -ge 1 ] || { echo "mesh-ca: -h needs hours >= 1" >&2; exit 2; }
name_re='^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$'
[[ $td =~ $name_re ]] || { echo "mesh-ca: bad trust domain '$td'" >&2; exit 2; }
[[ $ns =~ $name_re ]] || { echo "mesh-ca: bad namespace '$ns'" >&2; exit 2; }

mkdir -p "$dir"
chmod 700 "$dir"
tmp=$(mktemp -d "$dir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ "$new_ca" = 1 ] || [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/ca.key" ] ||
	! openssl x509 -in "$dir/ca.pem" -noout -checkend $((2 * 86400)) >/dev/null 2>&1; then
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 10 \
		-subj "/O=switchboard mesh/CN=$td development CA" \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectAltName=URI:spiffe://$td" \
		-out "$tmp/ca.pem" 2>/dev/null
	chmod 600 "$tmp/ca.key"
	mv -f "$tmp/ca.key" "$dir/ca.key"
	mv -f "$tmp/ca.pem" "$dir/ca.pem"
	echo "mesh-ca: new CA $dir/ca.pem"
fi

# openssl x509 -days counts whole days; hours need explicit start and end dates, which only
# `openssl ca` takes: a throwaway CA database per run.
db=$tmp/db
mkdir -p "$db"
: >"$db/index.txt"
start=$(date -u -d '-5 minutes' +%Y%m%d%H%M%SZ)
end=$(date -u -d "+$hours hours" +%Y%m%d%H%M%SZ)
for svc in "$@"; do
	[[ $svc =~ $name_re ]] || { echo "mesh-ca: bad service name '$svc'" >&2; exit 2; }
	id="spiffe://$td/ns/$ns/sa/$svc"
	cat >"$tmp/$svc.cnf" <<CNF
[ ca ]
default_ca = dev
[ dev ]
database = $db/index.txt
new_certs_dir = $db
serial = $db/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[ any ]
organizationName = optional
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:$id,DNS:$svc,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
	openssl rand -hex 16 >"$db/serial"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$svc.key" 2>/dev/null
	openssl req -new -key "$tmp/$svc.key" -subj "/O=switchboard mesh/CN=$svc" -out "$tmp/$svc.csr" 2>/dev/null
	openssl ca -batch -config "$tmp/$svc.cnf" -extensions leaf -cert "$dir/ca.pem" \
		-keyfile "$dir/ca.key" -startdate "$start" -enddate "$end" -notext \
		-in "$tmp/$svc.csr" -out "$tmp/$svc.pem" >/dev/null 2>"$tmp/$svc.err" ||
		{ cat "$tmp/$svc.err" >&2; exit 1; }
	chmod 600 "$tmp/$svc.key"
	# Key first: a watcher that sees the new certificate then finds its key.
	mv -f "$tmp/$svc.key" "$dir/$svc.key"
	mv -f "$tmp/$svc.pem" "$dir/$svc.pem"
	echo "mesh-ca: $svc $id until $(openssl x509 -in "$dir/$svc.pem" -noout -enddate | cut -d= -f2)"
done
