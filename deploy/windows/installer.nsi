; installer.nsi: the Windows installer of branchsync-agent (NSIS 3, 64-bit).
;
; build-installer.sh builds it on Debian (package nsis):
;
;   makensis -DVERSION=0.1.0 -DAGENT_EXE=branchsync-agent.exe
;            -DEXAMPLE_INI=agent.ini -DOUTFILE=setup.exe installer.nsi
;
; It installs
;   C:\Program Files\branchsync\       branchsync-agent.exe, uninstall.exe
;                                      and agent.ini.example
;   %ProgramData%\branchsync\agent.ini the example configuration, unless
;                                      there is one: it may hold the branch
;                                      key, so only SYSTEM and
;                                      Administrators may read it
; and registers the service "branchsync-agent" (branchsync-agent.exe
; service install), which starts with Windows. Over an earlier version it
; stops a running service first (its .exe is in use) and starts it again.
;
; The uninstaller removes the service (stopping it cleanly), the program
; files and the Add/Remove Programs entry. %ProgramData%\branchsync (the
; configuration, a key file, the logs) and the POS file stay.
;
; Both run silently with /S; the exit code is 0 on success.

Unicode true
Target amd64-unicode
RequestExecutionLevel admin
SetCompressor /SOLID lzma

!include LogicLib.nsh

!define SERVICE "branchsync-agent"
!define UNINST_KEY \
	"Software\Microsoft\Windows\CurrentVersion\Uninstall\branchsync-agent"
; SYSTEM and the Administrators group, by SID (names are localized)
!define ADMINS_ONLY "/inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F"

Name "branchsync agent ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\branchsync"
InstallDirRegKey HKLM "${UNINST_KEY}" "InstallLocation"
ShowInstDetails show
ShowUninstDetails show

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

Var was_running ; "0" when net stop stopped a running service

Section "branchsync agent"
	SetShellVarContext all ; $APPDATA is ProgramData
	nsExec::ExecToLog '"$SYSDIR\net.exe" stop ${SERVICE}'
	Pop $was_running

	SetOutPath "$INSTDIR"
	File "/oname=branchsync-agent.exe" "${AGENT_EXE}"
	File "/oname=agent.ini.example" "${EXAMPLE_INI}"
	WriteUninstaller "$INSTDIR\uninstall.exe"

	CreateDirectory "$APPDATA\branchsync"
	${IfNot} ${FileExists} "$APPDATA\branchsync\agent.ini"
		SetOutPath "$APPDATA\branchsync"
		File "/oname=agent.ini" "${EXAMPLE_INI}"
		nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$APPDATA\branchsync\agent.ini" ${ADMINS_ONLY}'
		Pop $0
		${If} $0 != 0
			DetailPrint "warning: could not restrict $APPDATA\branchsync\agent.ini to SYSTEM and Administrators (icacls: $0)"
		${EndIf}
	${EndIf}

	WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "branchsync agent"
	WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
	WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "branchsync"
	WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
	WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" \
		'"$INSTDIR\uninstall.exe"'
	WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" \
		'"$INSTDIR\uninstall.exe" /S'
	WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
	WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1

	; A new service, or the existing one pointed at this .exe.
	nsExec::ExecToLog '"$INSTDIR\branchsync-agent.exe" service install -c "$APPDATA\branchsync\agent.ini"'
	Pop $0
	${If} $0 != 0
		MessageBox MB_ICONSTOP "Could not register the service ${SERVICE} (exit code $0); see the details." /SD IDOK
		SetErrorLevel 2
		Abort
	${EndIf}
	${If} $was_running == 0
		nsExec::ExecToLog '"$SYSDIR\net.exe" start ${SERVICE}'
		Pop $0
	${EndIf}
SectionEnd

Section "Uninstall"
	SetShellVarContext all
	nsExec::ExecToLog '"$INSTDIR\branchsync-agent.exe" service uninstall'
	Pop $0
	Delete /REBOOTOK "$INSTDIR\branchsync-agent.exe"
	Delete "$INSTDIR\agent.ini.example"
	Delete "$INSTDIR\uninstall.exe"
	RMDir /REBOOTOK "$INSTDIR"
	DeleteRegKey HKLM "${UNINST_KEY}"
SectionEnd
