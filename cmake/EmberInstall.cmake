# Installation: the CMake package (ember::sdk, ember::kernel, and the
# ember_add_plugin() helper) and pkg-config files ember-sdk.pc / ember.pc.
include(CMakePackageConfigHelpers)
set(EMBER_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ember)

install(EXPORT ember-targets NAMESPACE ember:: DESTINATION ${EMBER_CMAKE_DIR})
configure_package_config_file(cmake/emberConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/emberConfig.cmake
  INSTALL_DESTINATION ${EMBER_CMAKE_DIR}
  PATH_VARS EMBER_INSTALL_PLUGINDIR)
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/emberConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/emberConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/emberConfigVersion.cmake
              cmake/EmberPlugin.cmake
        DESTINATION ${EMBER_CMAKE_DIR})

# The .pc files locate the prefix from their own directory, so a staged
# install (cmake --install --prefix DIR) works as well as the real one.
file(RELATIVE_PATH EMBER_PC_UP
  /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
string(REGEX REPLACE "/$" "" EMBER_PC_UP "${EMBER_PC_UP}")
set(EMBER_PC_PREFIX "\${pcfiledir}/${EMBER_PC_UP}")
foreach(pc ember ember-sdk)
  configure_file(cmake/${pc}.pc.in ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
