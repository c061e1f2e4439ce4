# ember_add_plugin(<target> SOURCES <src>... [LIBRARIES <lib>...]
#                  [OUTPUT_NAME <name>] [NO_INSTALL])
#
# Builds an ember plugin the one way every plugin is built: a MODULE with
# hidden visibility, linked with -Wl,-z,defs (every symbol resolved at link
# time) against the SDK only (plus any third-party LIBRARIES it needs, never
# the kernel). The file lands in the plugin directory of the build tree and
# is installed to <libdir>/ember/plugins unless NO_INSTALL.
#
# This file is installed with the package, so out-of-tree plugins use it too:
#   find_package(ember CONFIG REQUIRED)
#   ember_add_plugin(myplugin SOURCES myplugin.c)
function(ember_add_plugin target)
  cmake_parse_arguments(P "NO_INSTALL" "OUTPUT_NAME" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT P_SOURCES)
    message(FATAL_ERROR "ember_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${P_SOURCES})
  if(TARGET ember::sdk)
    target_link_libraries(${target} PRIVATE ember::sdk ${P_LIBRARIES})
  else()
    target_link_libraries(${target} PRIVATE ember_sdk ${P_LIBRARIES})
  endif()
  if(NOT P_OUTPUT_NAME)
    set(P_OUTPUT_NAME ${target})
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${P_OUTPUT_NAME}
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED EMBER_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY ${EMBER_PLUGIN_OUTPUT_DIRECTORY})
  endif()
  # Sanitized builds leave sanitizer runtime symbols to the host program.
  if(NOT EMBER_SANITIZE)
    target_link_options(${target} PRIVATE -Wl,-z,defs)
  endif()
  if(NOT P_NO_INSTALL AND DEFINED EMBER_INSTALL_PLUGINDIR)
    install(TARGETS ${target} LIBRARY DESTINATION ${EMBER_INSTALL_PLUGINDIR})
  endif()
endfunction()
