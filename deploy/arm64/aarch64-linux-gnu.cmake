# CMake toolchain file: cross-compile the agent for Linux arm64 (aarch64)
# with Debian's gcc-aarch64-linux-gnu, against Debian's arm64 packages
# installed side by side with the amd64 ones (multiarch; see
# deploy/arm64/setup.sh). Used with -DBS_AGENT_ONLY=ON: tests/cross.sh arm64.
#
#   cmake -DCMAKE_TOOLCHAIN_FILE=$PWD/deploy/arm64/aarch64-linux-gnu.cmake \
#         -DBS_AGENT_ONLY=ON ...
#
# Headers are /usr/include (shared) and /usr/include/aarch64-linux-gnu,
# libraries /usr/lib/aarch64-linux-gnu: the cross gcc searches both. The
# tests run the arm64 binaries under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(BS_ARM64_TRIPLET aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${BS_ARM64_TRIPLET}-gcc)
set(CMAKE_AR ${BS_ARM64_TRIPLET}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${BS_ARM64_TRIPLET}-ranlib CACHE FILEPATH "")
# CMake looks for libraries and packages in lib/aarch64-linux-gnu of its
# usual prefixes, never in lib/x86_64-linux-gnu; programs (qemu, python3)
# are the build machine's.
set(CMAKE_LIBRARY_ARCHITECTURE ${BS_ARM64_TRIPLET})

# pkg-config: the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR}
    "/usr/lib/${BS_ARM64_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# ctest runs the tests' arm64 executables through qemu-user.
#
# qemu's -L (its prefix for the guest's absolute paths) is "/", the
# machine's own multiarch tree: the guest's /lib/ld-linux-aarch64.so.1 is
# then libc6:arm64's, the same glibc build as the libc.so.6 that nng,
# SQLite and the other arm64 libraries load. -L /usr/aarch64-linux-gnu
# would take the loader from libc6-arm64-cross instead (Debian 12: glibc
# 2.36-8, a snapshot of the cross toolchain) while libc.so.6 still comes
# from libc6:arm64 (2.36-9+deb12u*): a loader and a libc of two builds.
# -DBS_QEMU_LD_PREFIX=... overrides it, e.g. for a sysroot holding all
# the libraries.
set(BS_QEMU_LD_PREFIX "/" CACHE PATH "qemu-aarch64 -L: the guest's root")
find_program(BS_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(BS_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BS_QEMU_AARCH64} -L ${BS_QEMU_LD_PREFIX})
endif()

# The tests of this build carry the ctest label "arm64" too.
set(BS_CROSS_LABEL arm64 CACHE STRING "Extra ctest label of a cross build")
