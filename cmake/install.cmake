# Installation: public headers, static and shared libraries, pkg-config file and a CMake
# package (find_package(uffdgc) gives uffdgc::uffdgc_static, uffdgc::uffdgc_shared and
# uffdgc::uffdgc, the static one). Included at the end of the top-level CMakeLists.txt.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(UGC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/uffdgc)

if(EXISTS ${PROJECT_SOURCE_DIR}/include/uffdgc.h)
  install(FILES ${PROJECT_SOURCE_DIR}/include/uffdgc.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/include/uffdgc)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/uffdgc/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/uffdgc FILES_MATCHING PATTERN "*.h")
endif()

install(TARGETS uffdgc_static uffdgc_shared EXPORT uffdgcTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT uffdgcTargets NAMESPACE uffdgc:: DESTINATION ${UGC_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/uffdgcConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/uffdgcConfig.cmake
                              INSTALL_DESTINATION ${UGC_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/uffdgcConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/uffdgcConfig.cmake ${PROJECT_BINARY_DIR}/uffdgcConfigVersion.cmake
        DESTINATION ${UGC_CMAKE_DIR})

# The .pc file locates the prefix from its own directory, so `cmake --install --prefix X`
# (what `make install PREFIX=X` runs) gives a correct file without re-configuring.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(UGC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(UGC_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(UGC_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH UGC_PC_UP /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
  set(UGC_PC_PREFIX "\${pcfiledir}/${UGC_PC_UP}")
  set(UGC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(UGC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/uffdgc.pc.in ${PROJECT_BINARY_DIR}/uffdgc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/uffdgc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
