# Runs inside `cmake --install` (cmake/install.cmake's install(CODE)): writes shardz.pc and
# shardzd.service for the prefix of this install (CMAKE_INSTALL_PREFIX here is the one given
# to --install) and installs them, the sysusers.d entry and the config file (file(INSTALL)
# adds DESTDIR itself).
# Directories given relative are under the prefix; the config file goes to /etc for the
# prefixes /usr and /, else to PREFIX/etc, unless CMAKE_INSTALL_SYSCONFDIR was set absolute.
set(prefix "${CMAKE_INSTALL_PREFIX}")
function(shardz_full var dir)
  if(IS_ABSOLUTE "${dir}")
    set(${var} "${dir}" PARENT_SCOPE)
  else()
    set(${var} "${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
if(IS_ABSOLUTE "${SHARDZ_SYSCONFDIR}")
  set(sysconfdir "${SHARDZ_SYSCONFDIR}")
elseif(prefix STREQUAL "/usr" OR prefix STREQUAL "/")
  set(sysconfdir "/etc")
else()
  set(sysconfdir "${prefix}/${SHARDZ_SYSCONFDIR}")
endif()
shardz_full(libdir "${SHARDZ_LIBDIR}")
shardz_full(sbindir "${SHARDZ_SBINDIR}")
shardz_full(unitdir "${SHARDZ_SYSTEMD_UNITDIR}")
# shardz.pc: libdir and includedir relative to ${prefix} when they are under it
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${SHARDZ_${dir}}")
    set(SHARDZ_PC_${dir} "${SHARDZ_${dir}}")
  else()
    set(SHARDZ_PC_${dir} "\${prefix}/${SHARDZ_${dir}}")
  endif()
endforeach()
set(PROJECT_VERSION "${SHARDZ_VERSION}")
set(CMAKE_INSTALL_PREFIX_FOR_PC "${prefix}")
set(SHARDZ_CONFIG_FILE "${sysconfdir}/shardz/shardzd.conf")
set(CMAKE_INSTALL_FULL_SBINDIR "${sbindir}")
configure_file("${SHARDZ_SOURCE_DIR}/cmake/shardz.pc.in" "${SHARDZ_GEN}/shardz.pc" @ONLY)
configure_file("${SHARDZ_SOURCE_DIR}/ops/systemd/shardzd.service.in"
               "${SHARDZ_GEN}/shardzd.service" @ONLY)
file(INSTALL "${SHARDZ_GEN}/shardz.pc" DESTINATION "${libdir}/pkgconfig")
file(INSTALL "${SHARDZ_GEN}/shardzd.service" DESTINATION "${unitdir}")
file(INSTALL "${SHARDZ_SOURCE_DIR}/ops/systemd/shardz.sysusers"
     DESTINATION "${prefix}/lib/sysusers.d" RENAME shardz.conf)
file(INSTALL "${SHARDZ_SOURCE_DIR}/ops/systemd/shardzd.conf"
     DESTINATION "${sysconfdir}/shardz"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
