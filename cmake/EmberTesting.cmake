# ember_add_test(<name> SOURCES <src>... [LIBRARIES <lib>...]
#                [LABELS <label>...] [TIMEOUT <seconds>])
#
# One cmocka executable per test file, registered with CTest under <name>,
# labelled (unit, abi, record, loader, cli, fuzz ...) and with a timeout
# (60 s unless given). Test binaries land in build/tests/.
function(ember_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBRARIES;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE PkgConfig::CMOCKA ${T_LIBRARIES})
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
                       LABELS "${T_LABELS}")
endfunction()
