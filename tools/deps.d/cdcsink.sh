# cdcsink: the live Debezium source of its tests (tests/cdc/pom.xml and DbzSource.java):
# debezium-embedded and Debezium's PostgreSQL connector 3.6.1.Final with their dependencies
# from Maven Central, and DbzSource compiled against them, in $SB_CACHE_DIR/debezium-3.6.1
# (libs/, classes/). Sourced by tools/install-deps.sh ($here: the repository). A stamp (the
# checksum of the pom and the source) makes it a no-op when nothing changed.
sb_cdcsink_deps() {
	local cache=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}
	local dir=$cache/debezium-3.6.1 sum
	sum=$(cat "$here/tests/cdc/pom.xml" "$here/tests/cdc/DbzSource.java" | sha256sum | cut -c1-16)
	[ "$(cat "$dir/.sb-stamp" 2>/dev/null)" = "$sum" ] && return 0
	echo "install-deps: Debezium 3.6.1.Final (embedded, PostgreSQL connector) into $dir"
	rm -rf "$dir/libs" "$dir/classes"
	mkdir -p "$dir/classes"
	(cd "$here/tests/cdc" && mvn -q -B -Dmaven.repo.local="$cache/m2" \
		dependency:copy-dependencies -DoutputDirectory="$dir/libs") || return 1
	javac -nowarn -d "$dir/classes" -cp "$dir/libs/*" "$here/tests/cdc/DbzSource.java" || return 1
	echo "$sum" >"$dir/.sb-stamp"
}
sb_cdcsink_deps
