# shellcheck shell=bash
# Sourced by ./run: before the app starts, check that the system has the libraries Qt's
# X11 platform plugin loads, and name the Debian packages that are missing (Qt itself
# only says "xcb-cursor0 is needed", whatever is missing).

# Library file -> Debian package, for the libraries libqxcb.so needs outside the wheel.
_qt_lib_package() {
    case "$1" in
        libxcb-icccm.so.4) echo libxcb-icccm4 ;;
        libxcb-keysyms.so.1) echo libxcb-keysyms1 ;;
        libxcb-cursor.so.0) echo libxcb-cursor0 ;;
        libxcb-image.so.0) echo libxcb-image0 ;;
        libxcb-render-util.so.0) echo libxcb-render-util0 ;;
        libxcb-randr.so.0) echo libxcb-randr0 ;;
        libxcb-shape.so.0) echo libxcb-shape0 ;;
        libxcb-xinerama.so.0) echo libxcb-xinerama0 ;;
        libxcb-xkb.so.1) echo libxcb-xkb1 ;;
        libxcb-util.so.1) echo libxcb-util1 ;;
        libxcb-shm.so.0) echo libxcb-shm0 ;;
        libxcb-sync.so.1) echo libxcb-sync1 ;;
        libxcb-xfixes.so.0) echo libxcb-xfixes0 ;;
        libxcb-render.so.0) echo libxcb-render0 ;;
        libxcb-glx.so.0) echo libxcb-glx0 ;;
        libxcb.so.1) echo libxcb1 ;;
        libX11-xcb.so.1) echo libx11-xcb1 ;;
        libX11.so.6) echo libx11-6 ;;
        libxkbcommon-x11.so.0) echo libxkbcommon-x11-0 ;;
        libxkbcommon.so.0) echo libxkbcommon0 ;;
        libEGL.so.1) echo libegl1 ;;
        libGL.so.1) echo libgl1 ;;
        libOpenGL.so.0) echo libopengl0 ;;
        libfontconfig.so.1) echo libfontconfig1 ;;
        libfreetype.so.6) echo libfreetype6 ;;
        libdbus-1.so.3) echo libdbus-1-3 ;;
        libglib-2.0.so.0 | libgthread-2.0.so.0) echo libglib2.0-0 ;;
        libSM.so.6) echo libsm6 ;;
        libICE.so.6) echo libice6 ;;
        *) echo "(the package that ships $1)" ;;
    esac
}

# qt_missing_packages VENV: print the Debian packages whose libraries libqxcb.so cannot find.
qt_missing_packages() {
    local plugin
    plugin="$(ls "$1"/lib/python3*/site-packages/PySide6/Qt/plugins/platforms/libqxcb.so 2>/dev/null | head -n 1)"
    [ -n "$plugin" ] && command -v ldd >/dev/null 2>&1 || return 0
    ldd "$plugin" 2>/dev/null | awk '/=> not found/ {print $1}' | while read -r lib; do
        _qt_lib_package "$lib"
    done | sort -u | tr '\n' ' '
}

# check_qt_libraries VENV: stop with the exact apt-get line when the GUI could not start on X11.
check_qt_libraries() {
    [ "${QT_QPA_PLATFORM:-xcb}" = xcb ] || return 0   # offscreen, wayland, ...: not the xcb plugin
    [ -n "${DISPLAY:-}" ] || return 0                  # no X display: Qt will say that itself
    local missing
    missing="$(qt_missing_packages "$1")"
    [ -z "${missing// /}" ] && return 0
    echo "error: the app's window needs system libraries that are missing." >&2
    echo "       install them with: sudo apt-get install ${missing% }" >&2
    return 1
}
