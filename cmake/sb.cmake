# Helpers shared by every CMakeLists.txt of the project.

# sb_unit_tests(<library> LABELS <labels...>): every *_test.c in the current source directory
# becomes one cmocka executable linked with <library>, registered with ctest. One line per
# directory; a new test file needs no CMake change. Targets are named <directory>_<file>
# (services/realtime/frame_test.c → realtime_frame_test) unless the file name already starts
# with the directory's name or sb_, so every directory can name its tests foo_test.c.
function(sb_unit_tests lib)
	cmake_parse_arguments(ARG "" "" "LABELS" ${ARGN})
	file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.c)
	get_filename_component(dir ${CMAKE_CURRENT_SOURCE_DIR} NAME)
	foreach(t ${tests})
		get_filename_component(name ${t} NAME_WE)
		if(NOT name MATCHES "^(${dir}_|sb_)")
			set(name ${dir}_${name})
		endif()
		add_executable(${name} ${t})
		target_link_libraries(${name} PRIVATE ${lib} PkgConfig::CMOCKA)
		add_test(NAME ${name} COMMAND ${name})
		set_tests_properties(${name} PROPERTIES LABELS "unit;${ARG_LABELS}"
			ENVIRONMENT "SB_SOURCE_ROOT=${SB_SOURCE_ROOT};SB_BUILD_ROOT=${CMAKE_BINARY_DIR}")
	endforeach()
endfunction()

# sb_stack_test(<name> <executable> [STACK pg,redis,kafka] [LABELS ...]): an integration test
# that runs <executable> inside tests/lib/with-stack.sh, which starts the named servers on free
# loopback ports and exports their addresses (SB_TEST_PG_DSN, SB_TEST_REDIS_URL,
# SB_TEST_KAFKA_BROKERS) before running it, and stops them afterwards.
function(sb_stack_test name exe)
	cmake_parse_arguments(ARG "" "STACK" "LABELS;ARGS" ${ARGN})
	add_test(NAME ${name}
		COMMAND bash ${SB_SOURCE_ROOT}/tests/lib/with-stack.sh --stack "${ARG_STACK}" --
			$<TARGET_FILE:${exe}> ${ARG_ARGS})
	sb_stack_test_props(${name} "${ARG_STACK}" "${ARG_LABELS}")
endfunction()

# sb_stack_test_props(<test> <stack> <labels>): labels and environment of a with-stack test; a
# test whose stack names "kafka" uses the run's shared broker (ctest fixture "kafka", defined in
# tests/CMakeLists.txt), so ctest starts that broker before it and stops it after the last one.
function(sb_stack_test_props name stack labels)
	set(env "SB_SOURCE_ROOT=${SB_SOURCE_ROOT};SB_BUILD_ROOT=${CMAKE_BINARY_DIR}")
	string(REPLACE "," ";" servers "${stack}")
	if("kafka" IN_LIST servers)
		set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED kafka)
		list(APPEND env "SB_TEST_KAFKA_SHARED=${SB_KAFKA_SHARED_DIR}")
	endif()
	set_tests_properties(${name} PROPERTIES LABELS "integration;${labels}" ENVIRONMENT "${env}")
	# Label "serial": a test that reserves a block of fixed ports (make run under a port offset)
	# runs alone, so that no parallel test's free port lands inside its block meanwhile.
	if("serial" IN_LIST labels)
		set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
	endif()
endfunction()

# sb_service(<name>): the service binary sb-<name>. Every .c of the directory but main.c and the
# tests forms the library sb_<name>_lib (so unit tests link the same code); main.c adds the
# entry point. migrations/*.sql, if present, are embedded into the library as the table
# `<name>_migrations` (see services/common/sb_migrate.h).
function(sb_service name)
	file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
	list(FILTER srcs EXCLUDE REGEX "(_test|/main)\\.c$")
	add_library(sb_${name}_lib STATIC ${srcs})
	target_link_libraries(sb_${name}_lib PUBLIC sb_common)
	target_include_directories(sb_${name}_lib PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
	if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/migrations)
		sb_embed_migrations(sb_${name}_lib ${name} ${CMAKE_CURRENT_SOURCE_DIR}/migrations)
	endif()
	add_executable(sb-${name} ${CMAKE_CURRENT_SOURCE_DIR}/main.c)
	target_link_libraries(sb-${name} PRIVATE sb_${name}_lib)
	set_target_properties(sb-${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
	sb_unit_tests(sb_${name}_lib LABELS ${name})
endfunction()

# sb_embed_migrations(<target> <name> <dir>): compiles every <dir>/NNN_*.sql into a C table
# `const struct sb_migration <name>_migrations[]` (terminated by a zeroed row), regenerated when
# a file changes, so a binary carries its own schema history.
function(sb_embed_migrations target name dir)
	file(GLOB sqls CONFIGURE_DEPENDS ${dir}/*.sql)
	list(SORT sqls)
	set(out ${CMAKE_CURRENT_BINARY_DIR}/${name}_migrations.c)
	add_custom_command(OUTPUT ${out}
		COMMAND ${CMAKE_COMMAND} -DNAME=${name} -DOUT=${out} -DDIR=${dir}
			-P ${SB_SOURCE_ROOT}/cmake/embed_migrations.cmake
		DEPENDS ${sqls} ${SB_SOURCE_ROOT}/cmake/embed_migrations.cmake
		COMMENT "Embedding ${name} migrations")
	target_sources(${target} PRIVATE ${out})
endfunction()

# sb_embed_files(<target> <name> <dir>): compiles every file under <dir> into a C table
# `const struct sb_embedded_file <name>_files[]` (path relative to dir, bytes, size; ended by a
# zeroed row), regenerated when a file changes; a binary serves them without a data directory.
function(sb_embed_files target name dir)
	file(GLOB_RECURSE files CONFIGURE_DEPENDS ${dir}/*)
	list(SORT files)
	set(out ${CMAKE_CURRENT_BINARY_DIR}/${name}_files.c)
	add_custom_command(OUTPUT ${out}
		COMMAND ${CMAKE_COMMAND} -DNAME=${name} -DOUT=${out} -DDIR=${dir}
			-P ${SB_SOURCE_ROOT}/cmake/embed_files.cmake
		DEPENDS ${files} ${SB_SOURCE_ROOT}/cmake/embed_files.cmake
		COMMENT "Embedding ${name} files")
	target_sources(${target} PRIVATE ${out})
endfunction()
