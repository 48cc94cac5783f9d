"""The web console in a real headless Chromium, against a real hubd (started by ConsoleTests.swift).

Signs in, creates and edits a slot, mints a token, creates a stream, reads its records, follows it in the live
tail while publishing from the page and from outside, revokes the token, checks a phone-width layout and signs
out. Takes a screenshot of each page into --screenshots. Exit code 0 when every step held.

    .build/pyenv/bin/python Tests/Console/console_test.py --url http://127.0.0.1:4437 --token hub_… --screenshots /tmp/shots
"""
import argparse
import json
import os
import sys
import urllib.error
import urllib.request

from browser import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True)
parser.add_argument("--token", required=True)
parser.add_argument("--screenshots", required=True)
args = parser.parse_args()
os.makedirs(args.screenshots, exist_ok=True)


def hub(method, path, body=None, content_type="application/json", token=args.token):
    request = urllib.request.Request(args.url + path, method=method, data=body.encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


driver = chromium()
wait = WebDriverWait(driver, 10)


def shot(name):
    driver.save_screenshot(os.path.join(args.screenshots, f"console-{name}.png"))


def visible(css):
    return wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def text_in(css, text):
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def step(name):
    print(f"console test: {name}", flush=True)


try:
    step("the sign-in page says where the first token is")
    driver.get(args.url + "/console/")
    visible("#token")
    text_in("#sign-in", "admin.token")
    timing = driver.execute_script("""const paint = performance.getEntriesByName('first-contentful-paint')[0];
        const nav = performance.getEntriesByType('navigation')[0];
        return [paint ? paint.startTime : null, nav ? nav.domContentLoadedEventEnd : null];""")
    print(f"console test: first contentful paint {timing[0]:.0f} ms, DOM ready {timing[1]:.0f} ms (measured, not asserted)", flush=True)
    shot("sign-in")

    step("a wrong token is refused in words")
    driver.find_element(By.ID, "token").send_keys("hub_not_a_real_token_at_all_0000000000000000000")
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button").click()
    text_in("#sign-in-error", "not valid")

    step("signing in shows the live overview")
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(args.token)
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button").click()
    text_in("#view h1", "Overview")
    wait.until(lambda d: d.execute_script("return sessionStorage.getItem('eventhub.token')") == args.token)
    wait.until(lambda d: d.execute_script("return document.querySelector('.stat .value').textContent") != "–")  # a rate needs two readings

    step("create a slot, then edit its retention")
    driver.get(args.url + "/console/#/slots")
    visible("#slot-name").send_keys("shop")
    driver.find_element(By.ID, "slot-max-age").send_keys("7d")
    driver.find_element(By.CSS_SELECTOR, "form[aria-label='Slot settings'] button[type=submit]").click()
    text_in("#view table", "shop")
    text_in("#view table", "age 7d")
    driver.find_element(By.CSS_SELECTOR, "button[aria-label='Edit shop']").click()
    visible("#slot-max-records").send_keys("1000")
    driver.find_element(By.CSS_SELECTOR, "form[aria-label='Slot settings'] button[type=submit]").click()
    text_in("#view table", "1000 records")
    text_in("#view table", "age 7d")
    step("a bad value is explained, not sent")
    visible("#slot-name").send_keys("other")
    driver.find_element(By.ID, "slot-max-age").send_keys("soon")
    driver.find_element(By.CSS_SELECTOR, "form[aria-label='Slot settings'] button[type=submit]").click()
    text_in("form[aria-label='Slot settings'] .error", "not a duration")
    shot("slots")

    step("mint a token: the secret is shown once")
    driver.get(args.url + "/console/#/tokens")
    wait.until(lambda d: len(Select(d.find_element(By.ID, "token-slot")).options) > 1)
    Select(driver.find_element(By.ID, "token-slot")).select_by_value("shop")
    driver.find_element(By.ID, "scope-append").click()
    driver.find_element(By.ID, "token-label").send_keys("e2e")
    driver.find_element(By.CSS_SELECTOR, "form[aria-label='Mint a token'] button[type=submit]").click()
    secret = visible("#new-secret").text
    assert secret.startswith("hub_"), secret
    text_in("#view table", "e2e")
    shot("tokens")
    assert hub("POST", "/v1/events/shop", '{"n":0}', token=secret) == 200, "the minted token appends"

    step("a stream's records, page by page")
    assert hub("PUT", "/v1/stream/shop/orders") == 201
    assert hub("POST", "/v1/stream/shop/orders", '[{"n":1},{"n":2}]') == 204
    driver.get(args.url + "/console/#/streams")
    wait.until(lambda d: "shop/orders" in d.find_element(By.ID, "view").text)
    driver.find_element(By.LINK_TEXT, "shop/orders").click()
    text_in("#view h1", "shop/orders")
    wait.until(lambda d: '"n": 2' in d.find_element(By.ID, "view").text)

    step("the live tail shows what is published, from the page and from outside")
    driver.find_element(By.XPATH, "//button[text()='Start live tail']").click()
    text_in("#tail-state", "live")
    driver.find_element(By.ID, "publish-data").send_keys('{"n":3,"from":"page"}')
    driver.find_element(By.CSS_SELECTOR, "form[aria-label='Publish'] button[type=submit]").click()
    text_in(".tail", '"from":"page"')
    assert hub("POST", "/v1/stream/shop/orders", '{"n":4,"from":"outside"}') == 204
    text_in(".tail", '"from":"outside"')
    shot("stream")

    step("revoke the token: it stops working")
    driver.get(args.url + "/console/#/tokens")
    visible("button[aria-label='Revoke e2e']").click()
    visible("button.danger").click()
    wait.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#view tbody tr')].some(r => r.textContent.includes('e2e') && r.textContent.includes('revoked'))"))
    assert hub("POST", "/v1/events/shop", '{"n":5}', token=secret) == 401, "a revoked token is refused"

    step("consumers and the overview's storage table")
    driver.get(args.url + "/console/#/consumers")
    text_in("#view", "No durable consumers")
    shot("consumers")
    driver.get(args.url + "/console/#/overview")
    text_in("#view table", "shop")
    wait.until(lambda d: d.execute_script("return document.querySelector('.stat .value').textContent") != "–")
    shot("overview")

    step("phone width: no sideways scrolling")
    driver.set_window_size(390, 844)
    driver.get(args.url + "/console/#/slots")
    text_in("#view table", "shop")
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    shot("phone")
    driver.set_window_size(1280, 900)

    step("dark mode follows the system setting")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    driver.get(args.url + "/console/#/overview")
    text_in("#view table", "shop")
    background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 19, 22)", background
    shot("dark")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]})

    step("keyboard: a page opens with focus on its content, and Tab walks its fields and buttons")
    driver.get(args.url + "/console/#/slots")
    text_in("#view table", "shop")
    assert driver.switch_to.active_element.get_attribute("id") == "main"
    driver.switch_to.active_element.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.get_attribute("id") == "slot-name", driver.switch_to.active_element.get_attribute("outerHTML")
    for _ in range(9):
        driver.switch_to.active_element.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.get_attribute("aria-label") == "Edit shop", driver.switch_to.active_element.get_attribute("outerHTML")

    step("sign out forgets the token")
    driver.find_element(By.ID, "sign-out").click()
    visible("#token")
    assert driver.execute_script("return sessionStorage.getItem('eventhub.token')") is None

    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE" and "401" not in entry["message"]]
    assert not errors, f"console errors: {json.dumps(errors, indent=1)}"
    print("console test: OK", flush=True)
except Exception as error:  # noqa: BLE001 - report any failure with a screenshot
    shot("failure")
    print(f"console test: FAILED at the step above: {error!r}\npage text:\n{driver.find_element(By.TAG_NAME, 'body').text}", flush=True)
    sys.exit(1)
finally:
    driver.quit()
