# CMake toolchain file: cross-compile for Windows x86-64 with Debian's
# mingw-w64 (package gcc-mingw-w64-x86-64).
#
#   cmake -DCMAKE_TOOLCHAIN_FILE=$PWD/deploy/windows/mingw-w64-x86_64.cmake \
#         [-DBS_WIN_PREFIX=<prefix>] ...
#
# BS_WIN_PREFIX is where deploy/windows/build-deps.sh installed the static
# libraries (default: build-win/prefix at the top of the source tree).
# find_package(), find_library() and pkg-config look there and in the
# mingw-w64 sysroot only, never in the build machine's /usr.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(BS_WIN_TRIPLET x86_64-w64-mingw32)

set(CMAKE_C_COMPILER ${BS_WIN_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${BS_WIN_TRIPLET}-g++)
set(CMAKE_RC_COMPILER ${BS_WIN_TRIPLET}-windres)
set(CMAKE_AR ${BS_WIN_TRIPLET}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${BS_WIN_TRIPLET}-ranlib CACHE FILEPATH "")

if(NOT BS_WIN_PREFIX)
  get_filename_component(BS_WIN_PREFIX
    "${CMAKE_CURRENT_LIST_DIR}/../../build-win/prefix" ABSOLUTE)
endif()
# try_compile() projects read the toolchain file again: pass the prefix on.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES BS_WIN_PREFIX)

set(CMAKE_FIND_ROOT_PATH /usr/${BS_WIN_TRIPLET} ${BS_WIN_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs the tests' .exe files under wine when it is installed (Debian:
# wine64, whose loader is /usr/lib/wine/wine64, not on PATH).
find_program(BS_WINE NAMES wine64 wine PATHS /usr/lib/wine
             NO_CMAKE_FIND_ROOT_PATH)
if(BS_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BS_WINE})
endif()

# pkg-config: only the prefix's .pc files, static flags included.
set(ENV{PKG_CONFIG_LIBDIR} "${BS_WIN_PREFIX}/lib/pkgconfig:${BS_WIN_PREFIX}/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")
set(PKG_CONFIG_ARGN --static)

# The cross tests (tests/cross/) stop the agent with Ctrl+C, which wine
# delivers to a console program as SIGINT when its stdin is a terminal.
set(BS_CROSS_LABEL windows CACHE STRING "Extra ctest label of a cross build")
set(BS_AGENT_STOP_SIGNAL INT CACHE STRING "Signal that stops the agent cleanly")
set(BS_AGENT_TTY 1 CACHE STRING "The agent needs a terminal on stdin")
