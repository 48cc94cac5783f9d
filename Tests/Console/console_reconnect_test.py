"""The console's live tail and connection banner across a hubd crash, in headless Chromium.

Starts hubd itself (so it can kill -9 and restart it on the same port), opens a stream's live tail, kills the
hub, expects the connection banner, restarts the hub, publishes, and expects the tail to show the new message
and the banner to go away. Exit code 0 when every step held.

    .build/pyenv/bin/python Tests/Console/console_reconnect_test.py --hubd .build/debug/hubd --data-dir /tmp/d --port 4499 --web-dir web
"""
import argparse
import os
import signal
import subprocess
import sys
import urllib.request

from browser import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

parser = argparse.ArgumentParser()
parser.add_argument("--hubd", required=True)
parser.add_argument("--data-dir", required=True)
parser.add_argument("--port", required=True, type=int)
parser.add_argument("--web-dir", required=True)
args = parser.parse_args()
url = f"http://127.0.0.1:{args.port}"


def start_hub():
    hub = subprocess.Popen([args.hubd, "--listen", f"127.0.0.1:{args.port}", "--data-dir", args.data_dir, "--web-dir", args.web_dir,
                            "--log-level", "info"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in hub.stdout:  # ready once it logs that it listens: no polling
        if "listening" in line and "hub.port=" in line:
            return hub
    raise RuntimeError("hubd exited before listening")


def post(path, body, content_type="application/json"):
    request = urllib.request.Request(url + path, method="POST" if body is not None else "PUT", data=body.encode() if body else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


hub = start_hub()
token = open(os.path.join(args.data_dir, "admin.token")).read().strip()
urllib.request.urlopen(urllib.request.Request(url + "/v1/admin/slots", method="POST", data=b'{"name":"live"}',
                                              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}), timeout=10)
post("/v1/stream/live/s", None)

driver = chromium()
wait = WebDriverWait(driver, 20)
try:
    driver.get(url + "/console/")
    driver.execute_script("sessionStorage.setItem('eventhub.token', arguments[0])", token)
    driver.get(url + "/console/#/streams/live/s")
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#view h1"), "live/s"))
    driver.find_element(By.XPATH, "//button[text()='Start live tail']").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "tail-state"), "live"))
    post("/v1/stream/live/s", '{"n":"before"}')
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".tail"), '"before"'))
    print("console reconnect test: tail live", flush=True)

    hub.send_signal(signal.SIGKILL)
    hub.wait()
    wait.until(EC.visibility_of_element_located((By.ID, "banner")))
    wait.until(EC.text_to_be_present_in_element((By.ID, "banner"), "connection to the hub is lost"))
    print("console reconnect test: banner shown while the hub is down", flush=True)

    hub = start_hub()
    post("/v1/stream/live/s", '{"n":"after"}')
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".tail"), '"after"'))
    wait.until(EC.invisibility_of_element_located((By.ID, "banner")))
    lines = driver.execute_script("return [...document.querySelectorAll('.tail div')].map(d => d.textContent)")
    assert lines == ['{"n":"before"}', '{"n":"after"}'], lines
    print("console reconnect test: OK", flush=True)
except Exception as error:  # noqa: BLE001
    print(f"console reconnect test: FAILED: {error!r}\n{driver.find_element(By.TAG_NAME, 'body').text}", flush=True)
    sys.exit(1)
finally:
    driver.quit()
    hub.kill()
