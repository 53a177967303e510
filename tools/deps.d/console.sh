# tools/deps.d/console.sh (sourced by tools/install-deps.sh): the web console's third-party
# script. The console's uploads use tus-js-client's browser bundle (dist/tus.min.js, MIT),
# installed from npm into the cache, never into the repository; the gateway's build embeds
# what it finds there (services/gateway/CMakeLists.txt, SB_CONSOLE_VENDOR_DIR) and serves it at
# /console/tus.min.js. Installed again only when the stamp names another version.
sb_console_tus_version=4.3.1
sb_console_dir=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/console
if [ "$(cat "$sb_console_dir/.sb-stamp" 2>/dev/null)" != "tus-js-client $sb_console_tus_version" ] ||
	[ ! -s "$sb_console_dir/vendor/tus.min.js" ]; then
	echo "install-deps: tus-js-client $sb_console_tus_version for the console into $sb_console_dir"
	rm -rf "$sb_console_dir"
	mkdir -p "$sb_console_dir/npm" "$sb_console_dir/vendor"
	(cd "$sb_console_dir/npm" && npm install --no-save --no-audit --no-fund --loglevel=error \
		--prefix "$sb_console_dir/npm" "tus-js-client@$sb_console_tus_version") &&
		cp "$sb_console_dir/npm/node_modules/tus-js-client/dist/tus.min.js" "$sb_console_dir/vendor/" &&
		cp "$sb_console_dir/npm/node_modules/tus-js-client/LICENSE" \
			"$sb_console_dir/vendor/tus-js-client.LICENSE.txt" &&
		echo "tus-js-client $sb_console_tus_version" >"$sb_console_dir/.sb-stamp"
fi
