# Installation (`cmake --install build --prefix P`), included from CMakeLists.txt.
#
#   component runtime: lib/libember.a, lib/libember.so*, include/ember/ember.h,
#                      lib/cmake/ember/ (package: ember::ember static, ember::ember_shared),
#                      lib/pkgconfig/ember.pc
#   component tools:   lib/libember-tools.{a,so*}, include/ember/ember_tools.h,
#                      lib/cmake/ember/ember-tools-targets.cmake (ember::tools,
#                      ember::tools_shared), lib/pkgconfig/ember-tools.pc, bin/ember
#
# find_package(ember) gives ember::ember (and ember::tools when the tools component is
# installed; find_package(ember COMPONENTS tools) requires it). The static libraries'
# link dependencies travel with them: sentencepiece and pcre2-8 (found again by
# ember-config.cmake, from EMBER_SENTENCEPIECE_LIBRARY / EMBER_PCRE2_LIBRARY or the usual search), Threads and the C++ runtime
# (for C programs); in pkg-config, Libs.private (`pkg-config --static --libs ember`).
include(CMakePackageConfigHelpers)
set(EMBER_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ember)

install(TARGETS ember ember_shared EXPORT ember-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT runtime)
install(FILES ${CMAKE_SOURCE_DIR}/include/ember/ember.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ember
        COMPONENT runtime)
install(EXPORT ember-targets NAMESPACE ember:: DESTINATION ${EMBER_CMAKE_DIR} COMPONENT runtime)

configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/ember-config.cmake.in
                              ${CMAKE_BINARY_DIR}/ember-config.cmake INSTALL_DESTINATION ${EMBER_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/ember-config-version.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/ember-config.cmake ${CMAKE_BINARY_DIR}/ember-config-version.cmake
        DESTINATION ${EMBER_CMAKE_DIR} COMPONENT runtime)

# pkg-config: the private libraries are what the static library needs besides itself.
set(EMBER_PC_LIBS_PRIVATE "-lsentencepiece -lpcre2-8")
if(CMAKE_THREAD_LIBS_INIT)
  string(APPEND EMBER_PC_LIBS_PRIVATE " ${CMAKE_THREAD_LIBS_INIT}")
elseif(CMAKE_USE_PTHREADS_INIT AND NOT ANDROID)
  string(APPEND EMBER_PC_LIBS_PRIVATE " -lpthread")  # in libc since glibc 2.34; a stub there
endif()
foreach(lib IN LISTS EMBER_CXX_RUNTIME_LIBS)
  string(APPEND EMBER_PC_LIBS_PRIVATE " -l${lib}")
endforeach()
# ${pcfiledir} relative: the installed tree may be moved (or be a sysroot).
file(RELATIVE_PATH EMBER_PC_PREFIX_FROM_PCDIR /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(${CMAKE_SOURCE_DIR}/cmake/ember.pc.in ${CMAKE_BINARY_DIR}/ember.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/ember.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT runtime)

if(TARGET ember_tools)
  install(TARGETS ember_tools ember_tools_shared EXPORT ember-tools-targets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT tools
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT tools NAMELINK_COMPONENT tools)
  install(FILES ${CMAKE_SOURCE_DIR}/include/ember/ember_tools.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ember
          COMPONENT tools)
  install(EXPORT ember-tools-targets NAMESPACE ember:: DESTINATION ${EMBER_CMAKE_DIR} COMPONENT tools)
  configure_file(${CMAKE_SOURCE_DIR}/cmake/ember-tools.pc.in ${CMAKE_BINARY_DIR}/ember-tools.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/ember-tools.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT tools)
  install(TARGETS ember_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
endif()
